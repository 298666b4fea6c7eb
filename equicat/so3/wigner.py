"""Edge frames and Wigner-D matrices.

An *edge frame* is the rotation ``R`` that takes an edge direction ``r`` to the polar axis
``y`` (``R r = y``). equicat fixes the roll about the edge deterministically: ``R`` is the
Euler rotation with zero third angle,

    R^-1 = R_y(alpha) R_x(beta),   cos(beta) = r_y,  (sin(alpha), cos(alpha)) ~ (r_x, r_z),

so the same edge always gets the same frame (the fairchem reference draws a random roll per
call, which makes repeated predictions differ where a grid non-linearity is applied in the
edge frame). An edge exactly along +-y (where alpha is undefined) takes alpha = 0.

Every smooth choice of roll must be singular somewhere on the sphere (the hairy-ball
theorem); for the Euler frame that is along +-y, a direction crystal bonds often take
exactly (lattice vectors of cells aligned with the axes). :class:`WignerD` therefore applies
the Euler frame after a fixed generic rotation ``Q``: the frame is ``R = R'(Q r) Q``, still
taking ``r`` to ``+y``, with its singular directions at ``+-Q^T y``, which no lattice
direction with small indices hits.

The Wigner-D matrix of ``R`` is defined by ``Y(R p) = D(R) Y(p)`` for the real spherical
harmonics ``Y`` of :mod:`equicat.so3.harmonics`; applying ``D(R)`` to a coefficient vector
rotates the function it represents by ``R``. Each degree-``l`` block is recovered exactly
from harmonics evaluated at a fixed, well-conditioned set of points:
``D_l(R) = Y_l(R P)^T pinv(Y_l(P)^T)``, which is cheap, batched and differentiable.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equicat.so3.constants import ConstantCache
from equicat.so3.harmonics import num_coefficients, spherical_harmonics

__all__ = ["edge_frames", "rotate_points", "WignerD"]


def edge_frames(vectors: Tensor, eps: float = 1e-14) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Euler parameters of the deterministic edge frame.

    Args:
        vectors: ``[E, 3]`` edge vectors (any length > 0).
        eps: Squared in-plane length below which an edge counts as lying on the y axis.

    Returns:
        ``(cos_a, sin_a, cos_b, sin_b)``, each ``[E]``: the frame is
        ``R = R_x(beta)^T R_y(alpha)^T``, which maps the unit edge vector to ``+y``.
    """
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    x, y, z = unit.unbind(-1)
    rho2 = x * x + z * z
    on_axis = rho2 <= eps
    # safe square root / division: no NaN gradients for edges on the y axis
    rho = torch.sqrt(torch.where(on_axis, torch.ones_like(rho2), rho2))
    cos_a = torch.where(on_axis, torch.ones_like(z), z / rho)
    sin_a = torch.where(on_axis, torch.zeros_like(x), x / rho)
    sin_b = torch.where(on_axis, torch.zeros_like(rho), rho)
    return cos_a, sin_a, y, sin_b


def rotate_points(frame: tuple[Tensor, Tensor, Tensor, Tensor], points: Tensor) -> Tensor:
    """Apply the edge frames to fixed points.

    Args:
        frame: Output of :func:`edge_frames` (each ``[E]``).
        points: ``[K, 3]`` points.

    Returns:
        ``[E, K, 3]`` rotated points ``R_e p_k``.
    """
    cos_a, sin_a, cos_b, sin_b = (t[:, None] for t in frame)
    px, py, pz = points.unbind(-1)
    # q = R_y(alpha)^T p
    qx = cos_a * px - sin_a * pz
    qz = sin_a * px + cos_a * pz
    qy = py.expand_as(qx)
    # R_x(beta)^T q
    return torch.stack((qx, cos_b * qy + sin_b * qz, cos_b * qz - sin_b * qy), dim=-1)


def _sample_points(lmax: int) -> Tensor:
    """Generic, well-spread points (a Fibonacci spiral with an irrational twist)."""
    k = 2 * (2 * lmax + 1) + 3
    i = torch.arange(k, dtype=torch.float64) + 0.5
    polar = torch.acos(1 - 2 * i / k)
    azim = i * torch.pi * (3.0 - 5.0**0.5) + 0.3
    pts = torch.stack(
        (polar.sin() * azim.cos(), polar.cos() + 0.1 * polar.sin(), polar.sin() * azim.sin()), -1
    )
    return pts / pts.norm(dim=-1, keepdim=True)


def generic_rotation() -> Tensor:
    """The fixed rotation ``Q`` [3, 3] (float64) that moves the frame's singular axis.

    ``Q = R_x(a) R_z(b)`` with angles irrational in units of pi; ``Q^T y`` is about
    ``(0.411, 0.523, -0.747)``, far from every low-index lattice direction.
    """
    a, b = 0.8431, 0.6657
    ca, sa, cb, sb = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
    rx = torch.tensor([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]], dtype=torch.float64)
    rz = torch.tensor([[cb, -sb, 0.0], [sb, cb, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return rx @ rz


class WignerD(nn.Module):
    """Block-diagonal Wigner-D matrices of edge frames up to degree ``lmax``.

    ``forward(vectors)`` returns ``[E, (lmax+1)^2, (lmax+1)^2]`` with ``D @ x`` taking
    coefficients from the global frame to the edge frame (edge along +y) and ``D^T``
    taking them back. The frame is ``R = R'(Q r) Q`` (module docstring), deterministic and
    smooth except for edges along ``+-Q^T y``.

    Args:
        lmax: Largest degree.
    """

    def __init__(self, lmax: int) -> None:
        super().__init__()
        self.lmax = lmax
        points = _sample_points(lmax)
        y = spherical_harmonics(lmax, points)  # [K, n]
        q = generic_rotation()
        pinvs = []
        for l_ in range(lmax + 1):
            block = y[:, l_ * l_ : (l_ + 1) ** 2]  # [K, 2l+1]
            pinvs.append(torch.linalg.pinv(block.T))  # [K, 2l+1]
        # q [3, 3]; points Q p [K, 3]; pinv [K, n], the degree blocks side by side
        self.const = ConstantCache(
            q=q, points=points @ q.T, raw_points=points, pinv=torch.cat(pinvs, dim=1)
        )

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"lmax={self.lmax}"

    def forward(self, vectors: Tensor) -> Tensor:
        """Wigner-D matrices ``[E, n, n]`` for edge vectors ``[E, 3]``."""
        # R p = R'(Q r) (Q p): Euler frame of the pre-rotated edge, applied to Q p
        frame = edge_frames(vectors @ self.const.get("q", vectors).T)
        rotated = rotate_points(frame, self.const.get("points", vectors))  # [E, K, 3]
        return self._from_rotated_points(rotated)

    def of_rotations(self, rotations: Tensor) -> Tensor:
        """Wigner-D matrices ``[B, n, n]`` of rotation matrices ``[B, 3, 3]``.

        ``D(R)`` satisfies ``Y(R p) = D(R) Y(p)``: ``D(R) @ x`` rotates the function with
        coefficients ``x`` by ``R``.
        """
        points = self.const.get("raw_points", rotations)  # [K, 3]
        return self._from_rotated_points(points @ rotations.transpose(1, 2))  # [B, K, 3]

    def _from_rotated_points(self, rotated: Tensor) -> Tensor:
        """``[B, n, n]`` from the sample points rotated by each rotation, ``[B, K, 3]``."""
        y_rot = spherical_harmonics(self.lmax, rotated, normalize=False)  # [B, K, n]
        pinv = self.const.get("pinv", rotated)
        n = num_coefficients(self.lmax)
        out = rotated.new_zeros(rotated.shape[0], n, n)
        for l_ in range(self.lmax + 1):
            s = slice(l_ * l_, (l_ + 1) ** 2)
            # D_l = Y_l(RP)^T @ pinv(Y_l(P)^T): [E, 2l+1, K] @ [K, 2l+1]
            out[:, s, s] = y_rot[:, :, s].transpose(1, 2) @ pinv[:, s]
        return out
