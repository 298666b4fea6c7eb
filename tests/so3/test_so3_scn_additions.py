"""so3 pieces added for SCN: Fibonacci points, the component grid normalisation, Wigner-D of
rotation matrices."""

from __future__ import annotations

import math

import pytest
import torch

from equicat.so3 import CoefficientLayout, SphereGrid, WignerD, spherical_harmonics
from equicat.so3.fibonacci import fibonacci_points
from equicat.so3.wigner import edge_frames, rotate_points

from .so3_helpers import random_rotation


@pytest.mark.parametrize("n", [1, 7, 128])
def test_fibonacci_points_are_unit_and_equal_area(n):
    p = fibonacci_points(n)
    assert p.shape == (n, 3)
    assert torch.allclose(p.norm(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-14)
    # equal-area bands: z_k = 1 - (2k + 1) / n
    z = 1 - (2 * torch.arange(n, dtype=torch.float64) + 1) / n
    assert torch.allclose(p[:, 2], z, atol=1e-14)


def test_fibonacci_points_integrate_low_degree_harmonics():
    """Equal weights integrate Y_lm (l > 0) to nearly zero, better with more points."""
    errs = [spherical_harmonics(3, fibonacci_points(n))[:, 1:].mean(0).abs().max() for n in
            (32, 128, 512)]  # fmt: skip
    assert errs[2] < errs[0] and errs[2] < 1e-2, errs


@pytest.mark.parametrize("lmax", [2, 4])
def test_component_grid_round_trip_and_values(lmax):
    layout = CoefficientLayout(lmax, lmax)
    grid = SphereGrid(layout, 2 * (lmax + 1), 2 * lmax + 3, "l_major", "integral")
    x = torch.randn(3, layout.size, 5, dtype=torch.float64)
    assert torch.allclose(grid.from_grid(grid.to_grid(x)), x, atol=1e-12)
    # grid values are sum_i c_i Y_i(p) / sqrt(4 pi): check the l = 0 coefficient alone
    c = torch.zeros(1, layout.size, 1, dtype=torch.float64)
    c[0, 0, 0] = 1.0
    values = grid.to_grid(c)
    assert torch.allclose(values, torch.full_like(values, 1 / math.sqrt(4 * math.pi)))
    with pytest.raises(ValueError, match="normalization"):
        SphereGrid(layout, 4, 5, "l_major", "bogus")


def test_wigner_of_rotations_rotates_harmonics_and_composes():
    wig = WignerD(3)
    r1, r2 = random_rotation(4).double(), random_rotation(5).double()
    d = wig.of_rotations(torch.stack((r1, r2, r1 @ r2)))
    p = torch.randn(6, 3, dtype=torch.float64)
    # Y(R p) = D(R) Y(p)
    assert torch.allclose(spherical_harmonics(3, p @ r1.T), spherical_harmonics(3, p) @ d[0].T,
                          atol=1e-12)  # fmt: skip
    assert torch.allclose(d[2], d[0] @ d[1], atol=1e-12)


def test_wigner_forward_equals_of_rotations_of_the_frame():
    vec = torch.randn(5, 3, dtype=torch.float64)
    wig = WignerD(2)
    from equicat.so3.wigner import generic_rotation

    q = generic_rotation()
    frame = edge_frames(vec @ q.T)
    rot = rotate_points(frame, torch.eye(3, dtype=torch.float64)).transpose(1, 2) @ q  # [E, 3, 3]
    assert torch.allclose(wig(vec), wig.of_rotations(rot), atol=1e-12)
