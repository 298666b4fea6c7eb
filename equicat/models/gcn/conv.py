"""One L-set graph convolution: fully connected tensor product with radial weights, gate."""

from __future__ import annotations

from e3nn import nn as e3nn_nn
from e3nn import o3
from torch import Tensor, nn

__all__ = ["Convolution", "node_irreps"]


def node_irreps(channels: int, degrees: tuple[int, ...]) -> o3.Irreps:
    """``channels x (l, (-1)^l)`` for each ``l`` in the set (the parity of ``Y_l``)."""
    return o3.Irreps([(channels, (l_, (-1) ** l_)) for l_ in degrees])


class Convolution(nn.Module):
    """NequIP-like convolution over a degree set (Lee et al., App. A.3).

    ``m_ij = FCTP_{W(r_ij)}(h_j, Y_L(r_ij))`` with weights ``W = u(r_ij) MLP(B(r_ij))`` per
    edge, ``a_i = sum_j m_ij / avg_degree``, then a gate (SiLU on scalars, sigmoid gates on
    ``l > 0``) of ``Linear(a_i) + SelfLinear(h_i)``; a residual when input and output irreps
    agree.

    Shapes: ``h [N, dim(irreps_in)] -> [N, dim(irreps_out)]``.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps,
                 num_basis: int, radial_hidden: int, avg_degree: float) -> None:  # fmt: skip
        super().__init__()
        self.irreps_in, self.irreps_out, self.avg_degree = irreps_in, irreps_out, avg_degree
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
        gates = o3.Irreps(f"{gated.num_irreps}x0e")
        self.gate = e3nn_nn.Gate(scalars, [nn.functional.silu], gates, [torch_sigmoid], gated)
        mid = self.gate.irreps_in  # scalars + gates + gated
        self.tp = o3.FullyConnectedTensorProduct(
            irreps_in, irreps_sh, mid, shared_weights=False, internal_weights=False
        )
        self.radial = nn.Sequential(
            nn.Linear(num_basis, radial_hidden), nn.SiLU(), nn.Linear(radial_hidden,
                                                                      self.tp.weight_numel)
        )  # fmt: skip
        self.linear = o3.Linear(mid, mid)
        self.self_linear = o3.Linear(irreps_in, mid)

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"{self.irreps_in} -> {self.irreps_out}, {self.tp.weight_numel} weights/edge"

    def forward(self, h: Tensor, sh: Tensor, basis: Tensor, envelope: Tensor, source: Tensor,
                target: Tensor) -> Tensor:  # fmt: skip
        """Convolve (shapes in the class docstring; ``sh [E, dim(L)]``, ``basis [E, K]``)."""
        weights = self.radial(basis) * envelope[:, None]  # [E, weight_numel]
        messages = self.tp(h[source], sh, weights)  # [E, dim(mid)]
        agg = h.new_zeros(h.shape[0], messages.shape[1]).index_add_(0, target, messages)
        out = self.gate(self.linear(agg / self.avg_degree) + self.self_linear(h))
        return h + out if self.irreps_in == self.irreps_out else out


def torch_sigmoid(x: Tensor) -> Tensor:
    """Sigmoid (a named function, as e3nn's Gate checks parities by calling it)."""
    return x.sigmoid()
