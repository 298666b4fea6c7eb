"""Mixture of hybrid experts: steerable and spherical feed-forward experts, routed per node."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from equicat.so3 import SO3Linear, SphericalTransform

__all__ = ["HybridExperts", "SteerableExpert", "SphericalExperts"]


class SteerableExpert(nn.Module):
    """Degree-wise linear -> gate activation -> degree-wise linear (strictly equivariant).

    The gate: hidden degree 0 goes through SiLU; each hidden degree ``l > 0`` is multiplied
    per channel by ``sigmoid`` of a gate computed from the input invariants ``x_0``.

    Shapes: ``[N, (L+1)^2, C] -> [N, (L+1)^2, C]``.
    """

    def __init__(self, lmax: int, channels: int, hidden: int) -> None:
        super().__init__()
        self.lmax, self.hidden = lmax, hidden
        self.linear_1 = SO3Linear(channels, hidden, lmax)
        self.gates = nn.Linear(channels, lmax * hidden)
        self.linear_2 = SO3Linear(hidden, channels, lmax)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the expert (shapes in the class docstring)."""
        h = self.linear_1(x)  # [N, n, H]
        gate = torch.sigmoid(self.gates(x[:, 0])).view(-1, self.lmax, self.hidden)  # [N, L, H]
        # [N, L, H] -> [N, n-1, H]: one gate per degree l > 0, repeated over its 2l+1 orders
        reps = torch.arange(1, self.lmax + 1, device=x.device) * 2 + 1
        gate = torch.repeat_interleave(gate, reps, dim=1)
        h = torch.cat((F.silu(h[:, :1]), h[:, 1:] * gate), dim=1)
        return self.linear_2(h)


class SphericalExperts(nn.Module):
    """``E`` point-wise SiLU MLPs on the sphere samples, evaluated together.

    Expert ``e``: ``from_sphere(W2_e SiLU(W1_e s + b1_e) + b2_e)`` with ``s = to_sphere(x)``.

    Shapes: ``[N, (L+1)^2, C] -> [E, N, (L+1)^2, C]``.
    """

    def __init__(
        self, transform: SphericalTransform, channels: int, hidden: int, num_experts: int
    ) -> None:
        super().__init__()
        self.transform = transform
        self.num_experts = num_experts
        b1, b2 = 1 / math.sqrt(channels), 1 / math.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(num_experts, channels, hidden).uniform_(-b1, b1))
        self.b1 = nn.Parameter(torch.zeros(num_experts, 1, 1, hidden))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden, channels).uniform_(-b2, b2))
        self.b2 = nn.Parameter(torch.zeros(num_experts, 1, 1, channels))

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"experts={self.num_experts}, hidden={self.w1.shape[-1]}"

    def forward(self, x: Tensor) -> Tensor:
        """Apply every expert (shapes in the class docstring)."""
        s = self.transform.to_sphere(x)  # [N, P, C]
        h = F.silu(torch.einsum("npc,ech->enph", s, self.w1) + self.b1)  # [E, N, P, H]
        out = torch.einsum("enph,ehc->enpc", h, self.w2) + self.b2  # [E, N, P, C]
        return self.transform.from_sphere(out)  # [E, N, n, C]


class HybridExperts(nn.Module):
    """EST's mixture of hybrid experts (sec. 3.2.3, app. C.3).

    A router scores the experts from the invariant part of each node's feature,
    ``g = softmax(W x_0)`` ``[N, E]`` (rotation invariant, so mixing equivariant outputs with
    it stays equivariant); the output is ``sum_e g_e expert_e(x)``. With ``top_k > 0`` only
    each node's ``k`` highest gates are kept and renormalised (dense routing computes every
    expert anyway; top-k here changes the function, not the cost).

    Args:
        transform: Coefficients <-> samples for the spherical experts.
        lmax: Largest degree.
        channels: Channels ``C``.
        hidden: Hidden channels of every expert.
        steerable: Number of steerable experts.
        spherical: Number of spherical experts.
        top_k: 0 for dense routing, else experts kept per node.

    Shapes: ``[N, (L+1)^2, C] -> [N, (L+1)^2, C]``.
    """

    def __init__(
        self,
        transform: SphericalTransform,
        lmax: int,
        channels: int,
        hidden: int,
        steerable: int,
        spherical: int,
        top_k: int = 0,
    ) -> None:
        super().__init__()
        self.num_steerable, self.num_spherical, self.top_k = steerable, spherical, top_k
        self.router = nn.Linear(channels, steerable + spherical)
        self.steerable = nn.ModuleList(
            SteerableExpert(lmax, channels, hidden) for _ in range(steerable)
        )
        self.spherical = (
            SphericalExperts(transform, channels, hidden, spherical) if spherical else None
        )

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return (
            f"steerable={self.num_steerable}, spherical={self.num_spherical}, "
            f"top_k={self.top_k or 'dense'}"
        )

    def gates(self, x: Tensor) -> Tensor:
        """``[N, E]`` routing weights (steerable experts first), rows summing to 1."""
        g = torch.softmax(self.router(x[:, 0]), dim=-1)
        if 0 < self.top_k < g.shape[-1]:
            keep = torch.zeros_like(g).scatter_(-1, g.topk(self.top_k, dim=-1).indices, 1.0)
            g = g * keep
            g = g / g.sum(-1, keepdim=True)
        return g

    def forward(self, x: Tensor) -> Tensor:
        """Route and combine (shapes in the class docstring)."""
        g = self.gates(x)  # [N, E]
        outs = [expert(x) for expert in self.steerable]  # each [N, n, C]
        if self.spherical is not None:
            outs.extend(self.spherical(x).unbind(0))
        return torch.einsum("ne,enic->nic", g, torch.stack(outs))
