"""SCN output blocks: energy and forces integrated over Fibonacci sphere points (eqs. 11-12)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from equicat.so3 import spherical_harmonics
from equicat.so3.constants import ConstantCache
from equicat.so3.fibonacci import fibonacci_points

__all__ = ["SpherePointMLP", "SphereOutputs"]


class SpherePointMLP(nn.Module):
    """``Linear(C, C) -> SiLU -> Linear(C, C) -> SiLU -> Linear(C, 1)`` at each sphere point.

    Shapes: ``[..., C] -> [...]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels)
        self.fc2 = nn.Linear(channels, channels)
        self.fc3 = nn.Linear(channels, 1)

    def forward(self, s: Tensor) -> Tensor:
        """Apply the MLP (shapes in the class docstring)."""
        return self.fc3(F.silu(self.fc2(F.silu(self.fc1(s)))))[..., 0]


def density_weights(points: Tensor, width: float) -> Tensor:
    """``[P]`` weights ``w_k ~ 1 / sum_j exp(-|p_k - p_j|^2 / width)``, mean 1 (App. B.2).

    Gaussian-weighted counting of nearby points: points in denser parts of the set count less.
    """
    d2 = ((points[:, None] - points[None]) ** 2).sum(-1)  # [P, P] squared chord lengths
    inv = 1.0 / torch.exp(-d2 / width).sum(1)
    return inv / inv.mean()


class SphereOutputs(nn.Module):
    """Per-atom energy ``int F_energy(s_i(r)) dr`` and force ``int r F_force(s_i(r)) dr``.

    The integrals are means over ``P`` Fibonacci points ``r_k`` (eqs. 11-12, App. B.2).
    Without a density width, ``s_i(r_k) = sum_lm x_ilm Y_lm(r_k) / sqrt(4 pi)`` with equal
    weights. With one (the published implementation, measured), each point becomes
    ``q_k = w_k r_k`` (:func:`density_weights`) and is used as is: the force integrand is
    ``q_k F_force`` and the channel values are the harmonics' homogeneous polynomials at
    ``q_k``, i.e. degree ``l`` is scaled by ``w_k^l``.

    Args:
        lmax: Degree of the embeddings.
        channels: ``C``.
        num_points: ``P``.
        forces: Build the force block.
        density_width: Width of :func:`density_weights`, or ``None`` for equal weights.

    Shapes: ``x [N, (L+1)^2, C] -> energy [N]``, ``forces [N, 3]``.
    """

    def __init__(
        self,
        lmax: int,
        channels: int,
        num_points: int,
        forces: bool,
        density_width: float | None = None,
    ) -> None:
        super().__init__()
        self.lmax, self.num_points, self.density_width = lmax, num_points, density_width
        points = fibonacci_points(num_points)  # [P, 3]
        sh = spherical_harmonics(lmax, points) / math.sqrt(4 * math.pi)  # [P, n]
        if density_width is not None:
            w = density_weights(points, density_width)  # [P]
            deg = torch.tensor([int(i**0.5) for i in range(sh.shape[1])], dtype=torch.float64)
            sh = sh * w[:, None] ** deg  # homogeneous degree-l polynomials at w_k r_k
            points = points * w[:, None]
        self.const = ConstantCache(points=points, sh=sh)
        self.energy = SpherePointMLP(channels)
        self.force = SpherePointMLP(channels) if forces else None

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        weights = "equal" if self.density_width is None else f"density {self.density_width}"
        return f"lmax={self.lmax}, points={self.num_points} (Fibonacci, {weights} weights)"

    def values(self, x: Tensor) -> Tensor:
        """``[N, P, C]`` channel values at the points."""
        return torch.matmul(self.const.get("sh", x), x)  # [P, n] @ [N, n, C]

    def node_energy(self, s: Tensor) -> Tensor:
        """``[N]`` per-atom energies from point values ``[N, P, C]``."""
        return self.energy(s).mean(dim=1)

    def node_forces(self, s: Tensor) -> Tensor:
        """``[N, 3]`` per-atom forces from point values ``[N, P, C]``."""
        assert self.force is not None
        mag = self.force(s)  # [N, P]
        return mag @ self.const.get("points", s) / self.num_points  # [N, P] @ [P, 3]
