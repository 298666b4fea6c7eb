"""Rotations and Wigner-D matrices built independently of ``equicat.so3.WignerD``.

The reference Wigner matrix of a rotation ``R`` is fitted by least squares from its defining
property ``Y(R p) = D(R) Y(p)`` at many random points, using only
:func:`equicat.so3.spherical_harmonics` (itself checked against e3nn).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from equicat.so3 import spherical_harmonics

DTYPE = torch.float64


def random_rotation(seed: int) -> Tensor:
    """A random proper rotation matrix ``[3, 3]`` (QR of a Gaussian matrix, det = +1)."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=DTYPE, generator=gen))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def rotation_about_y(angle: float) -> Tensor:
    """``[3, 3]`` rotation by ``angle`` about the polar axis y (a roll in the edge frame)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=DTYPE)


def wigner_from_rotation(lmax: int, rotation: Tensor, seed: int = 0) -> Tensor:
    """``[n, n]`` Wigner-D with ``Y(R p) = D Y(p)``, fitted at ``4 n`` random points."""
    gen = torch.Generator().manual_seed(seed)
    n = (lmax + 1) ** 2
    points = torch.randn(4 * n, 3, dtype=DTYPE, generator=gen)
    y = spherical_harmonics(lmax, points)  # [K, n]
    y_rot = spherical_harmonics(lmax, points @ rotation.T)  # [K, n] = Y(P) D^T
    return torch.linalg.lstsq(y, y_rot).solution.T


def rotate_coefficients(d: Tensor, x: Tensor) -> Tensor:
    """Apply one ``[n, n]`` Wigner matrix to features ``[B, n, C]``."""
    return torch.einsum("ij,bjc->bic", d, x)


def relative_error(got: Tensor, want: Tensor) -> float:
    """``||got - want|| / ||want||`` (Frobenius)."""
    return float((got - want).detach().norm() / want.detach().norm())
