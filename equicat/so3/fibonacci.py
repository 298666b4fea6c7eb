"""Fibonacci point sets on the unit sphere.

The spherical Fibonacci lattice places ``n`` points at heights ``z_k = 1 - (2k + 1) / n``
(equal-area bands) and azimuths ``phi_k = 2 pi k / phi`` (``phi`` the golden ratio), so
successive points turn by the golden angle and the set covers the sphere almost evenly for
any ``n``. SCN (Zitnick et al., 2022, App. B.2) integrates its energy and force blocks over
such a set with equal weights.

EST (Equivariant Spherical Transformer) samples its features on the lattice refined by a
repulsion "dynamics" (:func:`refined_fibonacci_points`) and inverts the transform with
quadrature weights fitted to the harmonics (:func:`fit_quadrature_weights`).
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch import Tensor

from equicat.so3.harmonics import spherical_harmonics

__all__ = [
    "fibonacci_points",
    "fit_quadrature_weights",
    "min_distance",
    "refined_fibonacci_points",
    "repulsion_energy",
]


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


def _pair_geometry(points: Tensor) -> tuple[Tensor, Tensor]:
    """Pair differences ``[n, n, 3]`` and distances ``[n, n]`` (diagonal set to +inf)."""
    diff = points[:, None, :] - points[None, :, :]
    dist = diff.norm(dim=-1)
    dist = dist + torch.diag(
        torch.full((len(points),), math.inf, dtype=points.dtype, device=points.device)
    )
    return diff, dist


def repulsion_energy(points: Tensor, s: float = 1.0) -> float:
    """Riesz ``s``-energy ``sum_{i<j} |x_i - x_j|^-s`` of a point set (``s = 1``: Coulomb).

    Args:
        points: ``[n, 3]`` points (unit vectors for a sphere lattice).
        s: Riesz exponent (> 0).

    Returns:
        The energy (dimensionless; lower is more uniform for a fixed ``n``).
    """
    _, dist = _pair_geometry(points.to(torch.float64))
    return float(dist.pow(-s).sum() / 2)


def min_distance(points: Tensor) -> float:
    """Smallest Euclidean (chord) distance between two distinct points of ``[n, 3]``."""
    if len(points) < 2:
        return math.inf
    _, dist = _pair_geometry(points.to(torch.float64))
    return float(dist.min())


def _tangent_forces(points: Tensor, s: float) -> Tensor:
    """``[n, 3]`` Riesz forces ``-dE/dx_i`` projected onto each point's tangent plane."""
    diff, dist = _pair_geometry(points)
    # -d/dx_i sum_j |x_i - x_j|^-s = s sum_j (x_i - x_j) |x_i - x_j|^-(s+2)
    force = s * (diff * dist.pow(-(s + 2))[..., None]).sum(dim=1)
    return force - (force * points).sum(-1, keepdim=True) * points


@functools.lru_cache(maxsize=32)
def _refined(n: int, steps: int, s: float, step_size: float) -> Tensor:
    points = fibonacci_points(n)
    if n < 3:
        return points
    # force scale of a neighbour at the mean spacing d ~ sqrt(4 pi / n): s / d^(s+1); a
    # step of step_size * d^(s+2) / s times the force moves a point ~step_size * d
    spacing = math.sqrt(4 * math.pi / n)
    lr = step_size * spacing ** (s + 2) / s
    energy = repulsion_energy(points, s)
    for _ in range(steps):
        trial = points + lr * _tangent_forces(points, s)
        trial = trial / trial.norm(dim=-1, keepdim=True)  # back onto the sphere
        trial_energy = repulsion_energy(trial, s)
        if trial_energy < energy:
            points, energy = trial, trial_energy
            lr *= 1.1
        else:  # overshoot: keep the points, shorten the step
            lr *= 0.5
    return points


def refined_fibonacci_points(
    n: int, steps: int = 200, s: float = 1.0, step_size: float = 0.1
) -> Tensor:
    """``[n, 3]`` float64 Fibonacci lattice made more uniform by a repulsion "dynamics".

    EST (sec. 3.2.2 and app. B.1) starts from the Fibonacci lattice and iterates two moves:
    push every point along the repulsive forces of all the others, then project the points
    back onto the sphere. Here the forces are ``-grad`` of the Riesz energy
    ``E = sum_{i<j} |x_i - x_j|^-s`` (Coulomb for ``s = 1``; the paper only says "the greater
    the distance, the smaller the force"), projected onto the tangent planes, and the move is
    a gradient-descent step whose length adapts so that the energy never rises (a rejected
    step is halved, an accepted one grows by 10%). The result is deterministic.

    The computation runs once per argument tuple and is cached; each call returns a copy.

    Args:
        n: Number of points (>= 1).
        steps: Descent iterations.
        s: Riesz exponent of the repulsion (> 0).
        step_size: First step length as a fraction of the mean spacing ``sqrt(4 pi / n)``.

    Returns:
        ``[n, 3]`` unit vectors, float64.
    """
    if n < 1:
        raise ValueError(f"need at least one point, got n={n}")
    if s <= 0 or steps < 0 or step_size <= 0:
        raise ValueError(f"need s > 0, steps >= 0, step_size > 0; got {s}, {steps}, {step_size}")
    return _refined(int(n), int(steps), float(s), float(step_size)).clone()


def fit_quadrature_weights(points: Tensor, lmax: int) -> Tensor:
    """Weights ``w`` with ``sum_k w_k Y_lm(x_k) = int Y_lm dOmega`` for all ``l <= lmax``.

    With equicat's component-normalised harmonics the right-hand side is ``4 pi`` for
    ``l = 0`` and 0 otherwise. Of all weight vectors that satisfy these ``(lmax + 1)^2``
    conditions (exactly when the points determine them, i.e. ``n >= (lmax + 1)^2`` points in
    general position), the one closest to the equal weights ``4 pi / n`` is returned:
    ``w = w0 + pinv(Y^T) (b - Y^T w0)``. With fewer points it is the least-squares fit.

    For an inverse transform that is exact on band-limited inputs of degree ``L``, fit with
    ``lmax = 2 L`` (products of two degree-``L`` harmonics have degree ``<= 2 L``).

    Args:
        points: ``[n, 3]`` directions.
        lmax: Largest degree integrated exactly.

    Returns:
        ``[n]`` float64 weights, steradian. They sum to ``4 pi`` when the fit is exact
        (``n >= (lmax + 1)^2`` points in general position); with fewer points they are
        only the least-squares fit and may not (a ``UserWarning`` says so).
    """
    pts = points.to(torch.float64)
    y = spherical_harmonics(lmax, pts)  # [n, (lmax+1)^2]
    if len(pts) < y.shape[1]:
        warnings.warn(
            f"{len(pts)} points cannot integrate degree {lmax} exactly (that needs at least "
            f"{y.shape[1]}): the quadrature weights are a least-squares fit",
            stacklevel=2,
        )
    b = torch.zeros(y.shape[1], dtype=torch.float64, device=pts.device)
    b[0] = 4 * math.pi
    w0 = torch.full((len(pts),), 4 * math.pi / len(pts), dtype=torch.float64, device=pts.device)
    return w0 + torch.linalg.pinv(y.T) @ (b - y.T @ w0)
