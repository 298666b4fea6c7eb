"""Spherical attention: a Transformer across the sampled orientations of each node."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equicat.so3 import SphericalTransform

__all__ = ["RelativeOrientationEmbedding", "SphericalAttention"]


def legendre(degree: int, t: Tensor) -> Tensor:
    """``[degree, ...]`` Legendre polynomials ``P_1(t) .. P_degree(t)`` (Bonnet recursion)."""
    out, prev, cur = [], torch.ones_like(t), t
    for k in range(1, degree + 1):
        out.append(cur)
        # (k + 1) P_{k+1} = (2k + 1) t P_k - k P_{k-1}
        prev, cur = cur, ((2 * k + 1) * t * cur - k * prev) / (k + 1)
    return torch.stack(out) if out else t.new_zeros((0, *t.shape))


class RelativeOrientationEmbedding(nn.Module):
    """Per-head attention bias ``b_h(p, q) = sum_k a_hk P_k(<u_p, u_q>)``.

    EST (eq. 13) augments queries and keys with orientation information so that their inner
    product gains a term in the relative orientation of the two points (the equation itself
    is lost in our copy of the paper). By the addition theorem,
    ``sum_m Y_km(u) Y_km(v) = (2k + 1) P_k(<u, v>)``, so augmenting ``q_p`` and ``k_q`` with
    per-head scaled harmonics of ``u_p`` and ``u_q`` adds exactly such a Legendre series; we
    learn its coefficients ``a_hk`` directly (``P_0`` is left out: a constant shifts all logits
    of a row equally and cancels in the softmax). The bias depends only on dot products of
    point directions, so it is rotation invariant.

    Args:
        num_heads: Heads ``H``.
        degree: Highest Legendre degree ``K``.

    Shapes: ``forward(cos [P, P]) -> [H, P, P]``.
    """

    def __init__(self, num_heads: int, degree: int) -> None:
        super().__init__()
        self.num_heads, self.degree = num_heads, degree
        self.coefficients = nn.Parameter(torch.randn(num_heads, degree) / math.sqrt(max(degree, 1)))

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"heads={self.num_heads}, degree={self.degree}"

    def forward(self, cos: Tensor) -> Tensor:
        """Bias of every head for every point pair (shapes in the class docstring)."""
        basis = legendre(self.degree, cos.clamp(-1.0, 1.0))  # [K, P, P]
        return torch.einsum("hk,kpq->hpq", self.coefficients.to(cos.dtype), basis)


class SphericalAttention(nn.Module):
    """Multi-head self-attention across the ``P`` sample points of each node's feature.

    ``s = to_sphere(x)`` ``[N, P, C]``; point-wise linear maps give ``q, k, v``; per head

        o_p = sum_q softmax_q(<q_p, k_q> / sqrt(d) + b(p, q)) v_q

    with ``b`` the :class:`RelativeOrientationEmbedding`; heads are concatenated, mapped
    point-wise back to ``C`` channels and transformed back to coefficients. Every point is a
    token with equal weight, as in the paper; on a rotation-closed point set this is exactly
    equivariant (EST Theorem 1), on a finite set up to a sampling error.

    Args:
        transform: Coefficients <-> samples.
        channels: Channels ``C`` of the features.
        num_heads: Heads ``H``.
        head_channels: Channels ``d`` per head.
        orientation_degree: Degree of the orientation embedding (0: none).

    Shapes: ``[N, (L+1)^2, C] -> [N, (L+1)^2, C]``. Memory: the logits are
    ``[N, H, P, P]`` (all nodes at once, no chunking), e.g. 0.5 GB in float32 for
    ``N = 200, H = 4, P = 400``.
    """

    def __init__(
        self,
        transform: SphericalTransform,
        channels: int,
        num_heads: int,
        head_channels: int,
        orientation_degree: int,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.num_heads, self.head_channels = num_heads, head_channels
        self.qkv = nn.Linear(channels, 3 * num_heads * head_channels)
        self.out = nn.Linear(num_heads * head_channels, channels)
        self.orientation = (
            RelativeOrientationEmbedding(num_heads, orientation_degree)
            if orientation_degree > 0
            else None
        )

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"heads={self.num_heads}, head_channels={self.head_channels}"

    def forward(self, x: Tensor) -> Tensor:
        """Attend across orientations (shapes in the class docstring)."""
        n, h, d = x.shape[0], self.num_heads, self.head_channels
        s = self.transform.to_sphere(x)  # [N, P, C]
        p = s.shape[1]
        # [N, P, 3 H d] -> 3 x [N, H, P, d]
        q, k, v = self.qkv(s).view(n, p, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # [N, H, P, P]
        if self.orientation is not None:
            logits = logits + self.orientation(self.transform.cos_angles(x))
        o = torch.softmax(logits, dim=-1) @ v  # [N, H, P, d]
        o = o.transpose(1, 2).reshape(n, p, h * d)  # [N, H, P, d] -> [N, P, H d]
        return self.transform.from_sphere(self.out(o))
