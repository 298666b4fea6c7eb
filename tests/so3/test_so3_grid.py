"""Sphere grids: quadrature exactness and coefficient <-> grid round trips."""

import math

import numpy as np
import pytest
import torch

from equicat.so3 import CoefficientLayout, SphereGrid, quadrature_weights, spherical_harmonics

from .so3_helpers import DTYPE


@pytest.mark.parametrize("res", [1, 2, 5, 8, 13, 18])
def test_quadrature_integrates_cos_powers_exactly(res):
    """``sum_b w_b cos^k(beta_b) = int_0^pi cos^k sin = 2/(k+1)`` (k even), 0 (k odd), k < res."""
    w = quadrature_weights(res)
    beta = (np.arange(res) + 0.5) / res * np.pi
    for k in range(res):
        exact = 2.0 / (k + 1) if k % 2 == 0 else 0.0
        assert abs(np.sum(w * np.cos(beta) ** k) - exact) < 1e-12, k


def test_quadrature_weights_are_symmetric_and_sum_to_two():
    w = quadrature_weights(11)
    np.testing.assert_allclose(w, w[::-1], rtol=0, atol=1e-14)
    assert abs(w.sum() - 2.0) < 1e-14


def _band_limited(layout: CoefficientLayout, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, layout.size, 5, dtype=DTYPE, generator=gen)


# (lmax, mmax, res_beta, res_alpha): minimal exact resolutions (2 lmax + 1, 2 mmax + 1) and more
RESOLVED = [(0, 0, 1, 1), (2, 2, 5, 5), (3, 3, 7, 7), (4, 4, 12, 12), (6, 6, 18, 18),
            (3, 1, 7, 3), (4, 2, 9, 5), (6, 2, 18, 18)]  # fmt: skip


@pytest.mark.parametrize("order", ["l_major", "m_major"])
@pytest.mark.parametrize(("lmax", "mmax", "res_beta", "res_alpha"), RESOLVED)
def test_round_trip_of_band_limited_coefficients(lmax, mmax, res_beta, res_alpha, order):
    """``from_grid(to_grid(c)) = s^2 c`` with ``s`` the documented truncation scale (1 if full)."""
    layout = CoefficientLayout(lmax, mmax)
    grid = SphereGrid(layout, res_beta, res_alpha, order)
    c = _band_limited(layout, seed=lmax + 10 * mmax)
    scale = torch.tensor(layout.truncation_scale(order), dtype=DTYPE)[None, :, None]
    if mmax == lmax:
        assert torch.all(scale == 1.0)
    torch.testing.assert_close(grid.from_grid(grid.to_grid(c)), scale**2 * c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", ["l_major", "m_major"])
@pytest.mark.parametrize(("res_beta", "res_alpha"), [(6, 7), (7, 6)])
def test_round_trip_fails_when_under_resolved(res_beta, res_alpha, order):
    """Below ``(2 lmax + 1, 2 mmax + 1)`` the quadrature is not exact: the check above has teeth."""
    layout = CoefficientLayout(3, 3)
    grid = SphereGrid(layout, res_beta, res_alpha, order)
    c = _band_limited(layout, seed=0)
    assert (grid.from_grid(grid.to_grid(c)) - c).abs().max() > 1e-2


@pytest.mark.parametrize("order", ["l_major", "m_major"])
def test_to_grid_evaluates_the_expansion(order):
    """``f(p) = sum_i c_i Y_i(p) / sqrt((2l + 1)(lmax + 1))`` at the documented grid points."""
    lmax, res_beta, res_alpha = 3, 8, 9
    layout = CoefficientLayout(lmax, lmax)
    grid = SphereGrid(layout, res_beta, res_alpha, order)
    c = _band_limited(layout, seed=3)
    beta = (torch.arange(res_beta, dtype=DTYPE) + 0.5) / res_beta * math.pi
    alpha = torch.arange(res_alpha, dtype=DTYPE) / res_alpha * 2 * math.pi
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    points = torch.stack((b.sin() * a.sin(), b.cos(), b.sin() * a.cos()), -1).reshape(-1, 3)
    idx = list(layout.m_major if order == "m_major" else layout.l_major)
    deg = torch.tensor([CoefficientLayout.degree(i) for i in idx], dtype=DTYPE)
    y = spherical_harmonics(lmax, points)[:, idx] / torch.sqrt((2 * deg + 1) * (lmax + 1))
    torch.testing.assert_close(grid.to_grid(c), torch.einsum("gi,bic->bgc", y, c),
                               rtol=0, atol=1e-12)  # fmt: skip


def test_m_major_and_l_major_grids_agree():
    """The two orders are the same transform with permuted coefficients."""
    layout = CoefficientLayout(4, 2)
    c_l = _band_limited(layout, seed=5)
    # reorder the l-major kept coefficients into m-major order
    pos = {full: k for k, full in enumerate(layout.l_major)}
    c_m = c_l[:, [pos[i] for i in layout.m_major]]
    g_l = SphereGrid(layout, 10, 10, "l_major").to_grid(c_l)
    g_m = SphereGrid(layout, 10, 10, "m_major").to_grid(c_m)
    torch.testing.assert_close(g_l, g_m, rtol=0, atol=1e-13)


def test_layout_orders_hold_the_same_coefficients():
    layout = CoefficientLayout(4, 2)
    assert sorted(layout.l_major) == sorted(layout.m_major)
    assert layout.size == sum(n if m == 0 else 2 * n for m, n in enumerate(layout.m_sizes))
    with pytest.raises(ValueError, match="mmax"):
        CoefficientLayout(2, 3)
