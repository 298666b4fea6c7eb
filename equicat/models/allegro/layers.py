"""Allegro building blocks: scalar MLPs, tensor-track irreps and one Allegro layer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from e3nn import o3
from torch import Tensor, nn

__all__ = ["mlp", "tensor_irreps", "AllegroLayer", "channel_times_harmonics", "scatter_sum"]


def mlp(sizes: Sequence[int], bias: bool = True) -> nn.Sequential:
    """``Linear -> SiLU`` blocks and a final Linear. Shapes: ``[*, sizes[0]] -> [*, sizes[-1]]``."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def tensor_irreps(channels: int, lmax: int) -> o3.Irreps:
    """``channels x (l, p)`` for every ``l <= lmax`` and both parities, ``0e`` first."""
    return o3.Irreps([(channels, (l_, p)) for l_ in range(lmax + 1) for p in (1, -1)])


def scatter_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[index[e]] += values[e]``. Shapes: ``[E, ...] -> [size, ...]``."""
    return values.new_zeros((size, *values.shape[1:])).index_add_(0, index, values)


def channel_times_harmonics(weights: Tensor, sh: Tensor, lmax: int,
                            both_parities: bool = False) -> Tensor:  # fmt: skip
    """``w_{n,l} Y_l`` for each channel ``n`` and degree ``l``, in e3nn's mul-major layout.

    Shapes: weights ``[E, C, lmax + 1]``, sh ``[E, (lmax + 1)^2]`` -> ``[E, C (lmax + 1)^2]``
    laid out as ``C x 0e + C x 1o + C x 2e + ...``; with ``both_parities`` the layout of
    :func:`tensor_irreps` (``[E, 2 C (lmax + 1)^2]``), the parity ``-(-1)^l`` blocks zero.
    """
    blocks = []
    for l_ in range(lmax + 1):
        y = sh[:, l_ * l_ : (l_ + 1) ** 2]  # [E, 2l + 1]
        block = (weights[:, :, l_, None] * y[:, None, :]).flatten(1)  # [E, C (2l+1)]
        if both_parities:
            zeros = torch.zeros_like(block)
            block = torch.cat((block, zeros) if l_ % 2 == 0 else (zeros, block), dim=1)
        blocks.append(block)
    return torch.cat(blocks, dim=1)


class AllegroLayer(nn.Module):
    """One Allegro layer on the edges ``ij`` (Musaelian et al. 2023, Fig. 1 right).

    1. Environment of centre ``i``: ``env_i = sum_k w(x_ik) Y(r_ik) / sqrt(avg_degree)``,
       with channel-and-degree weights ``w`` linear in the scalar track (no bias, so an
       edge whose scalars vanish at the cutoff leaves ``env_i`` smoothly).
    2. Tensor track: ``V_ij <- Linear(V_ij (x) env_i)``, a channel-wise ("uuu") tensor
       product over every allowed path ``(l1, p1) x (l2, p2) -> (l3, p3)``, ``l3 <= lmax``,
       then a linear mix of channels and paths per output irrep.
    3. Scalar track: ``x_ij <- (x_ij + u(r_ij) MLP(x_ij || V_ij[0e])) / sqrt 2``.

    Shapes: ``x [E, D]``, ``v [E, dim(tensor irreps)]`` -> same shapes.
    """

    def __init__(self, lmax: int, channels: int, latent_dim: int, latent_hidden: Sequence[int],
                 avg_degree: float) -> None:  # fmt: skip
        super().__init__()
        self.lmax, self.channels, self.avg_degree = lmax, channels, avg_degree
        self.irreps = tensor_irreps(channels, lmax)
        irreps_env = o3.Irreps([(channels, (l_, (-1) ** l_)) for l_ in range(lmax + 1)])
        self.env_weights = nn.Linear(latent_dim, channels * (lmax + 1), bias=False)
        out_list, instructions = [], []
        for i1, (_, ir1) in enumerate(self.irreps):
            for i2, (_, ir2) in enumerate(irreps_env):
                for ir3 in ir1 * ir2:
                    if ir3.l <= lmax:
                        instructions.append((i1, i2, len(out_list), "uuu", False))
                        out_list.append((channels, ir3))
        self.tp = o3.TensorProduct(self.irreps, irreps_env, o3.Irreps(out_list), instructions)
        self.linear = o3.Linear(self.tp.irreps_out, self.irreps)
        self.latent = mlp([latent_dim + channels, *latent_hidden, latent_dim])

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"tensor track {self.irreps}, {len(self.tp.instructions)} paths"

    def forward(self, x: Tensor, v: Tensor, sh: Tensor, envelope: Tensor, target: Tensor,
                num_atoms: int) -> tuple[Tensor, Tensor]:  # fmt: skip
        """Update both tracks.

        Args:
            x: ``[E, D]`` scalar track.
            v: ``[E, dim]`` tensor track (e3nn layout of :func:`tensor_irreps`).
            sh: ``[E, (lmax + 1)^2]`` spherical harmonics of the edge directions.
            envelope: ``[E]`` cutoff envelope ``u(r_ij)``.
            target: ``[E]`` centre atom ``i`` of each edge.
            num_atoms: ``N``.

        Returns:
            ``(x, v)`` updated, same shapes.
        """
        w = self.env_weights(x).view(-1, self.channels, self.lmax + 1)  # [E, C, L+1]
        env = scatter_sum(channel_times_harmonics(w, sh, self.lmax), target, num_atoms)
        env = env[target] / math.sqrt(self.avg_degree)  # [N, env_dim] -> [E, env_dim]
        v = self.linear(self.tp(v, env))  # [E, dim]
        scalars = v[:, : self.channels]  # [E, C], the 0e block
        update = self.latent(torch.cat((x, scalars), dim=1)) * envelope[:, None]
        return (x + update) / math.sqrt(2.0), v
