"""Fibonacci point sets on the unit sphere.

The spherical Fibonacci lattice places ``n`` points at heights ``z_k = 1 - (2k + 1) / n``
(equal-area bands) and azimuths ``phi_k = 2 pi k / phi`` (``phi`` the golden ratio), so
successive points turn by the golden angle and the set covers the sphere almost evenly for
any ``n``. SCN (Zitnick et al., 2022, App. B.2) integrates its energy and force blocks over
such a set with equal weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["fibonacci_points"]


def fibonacci_points(n: int) -> Tensor:
    """``[n, 3]`` float64 unit vectors of the spherical Fibonacci lattice (spiral axis z).

    Point ``k`` is ``(r cos phi_k, r sin phi_k, z_k)`` with ``z_k = 1 - (2k + 1) / n``,
    ``r = sqrt(1 - z_k^2)`` and ``phi_k = 2 pi k / golden_ratio``.

    Args:
        n: Number of points (>= 1).
    """
    if n < 1:
        raise ValueError(f"need at least one point, got n={n}")
    k = torch.arange(n, dtype=torch.float64)
    z = 1.0 - (2.0 * k + 1.0) / n
    r = torch.sqrt((1.0 - z * z).clamp_min(0.0))
    golden = (1.0 + math.sqrt(5.0)) / 2.0
    phi = torch.remainder(2.0 * math.pi * k / golden, 2.0 * math.pi)
    return torch.stack((r * phi.cos(), r * phi.sin(), z), dim=-1)
