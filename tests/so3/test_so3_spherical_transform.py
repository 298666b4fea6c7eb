"""Refined Fibonacci lattice, fitted quadrature weights and the spherical transform pair."""

import math

import pytest
import torch

from equicat.so3 import CoefficientLayout, SphereGrid, spherical_harmonics
from equicat.so3.fibonacci import (
    fibonacci_points,
    fit_quadrature_weights,
    min_distance,
    refined_fibonacci_points,
    repulsion_energy,
)
from equicat.so3.spherical_transform import SphericalTransform

from .so3_helpers import DTYPE, random_rotation, wigner_from_rotation


@pytest.mark.parametrize("n", [50, 100, 400])
def test_refinement_lowers_energy_and_spreads_points(n, error_table):
    plain, refined = fibonacci_points(n), refined_fibonacci_points(n)
    assert refined.dtype == torch.float64
    torch.testing.assert_close(refined.norm(dim=-1), torch.ones(n, dtype=DTYPE), rtol=0, atol=1e-14)
    e_plain, e_ref = repulsion_energy(plain), repulsion_energy(refined)
    d_plain, d_ref = min_distance(plain), min_distance(refined)
    error_table.append(f"n={n} energy plain - refined", e_plain - e_ref, float("nan"))
    error_table.append(f"n={n} min distance refined / plain", d_ref / d_plain, float("nan"))
    assert e_ref < e_plain
    assert d_ref > 1.05 * d_plain  # measured: 1.13 (n=100), 1.11 (n=400)


def test_refinement_is_cached_deterministic_and_returns_copies():
    a = refined_fibonacci_points(64)
    a.mul_(0.0)  # the caller's copy, not the cache
    b, c = refined_fibonacci_points(64), refined_fibonacci_points(64)
    assert torch.equal(b, c) and b.abs().sum() > 0
    assert not torch.equal(refined_fibonacci_points(64, steps=5), b)


def test_repulsion_energy_and_min_distance_of_known_sets():
    # a regular tetrahedron: 6 edges of length sqrt(8/3)
    t = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=DTYPE) / math.sqrt(3)
    assert repulsion_energy(t) == pytest.approx(6 / math.sqrt(8 / 3), rel=1e-14)
    assert repulsion_energy(t, s=2.0) == pytest.approx(6 / (8 / 3), rel=1e-14)
    assert min_distance(t) == pytest.approx(math.sqrt(8 / 3), rel=1e-14)


@pytest.mark.parametrize(("n", "lmax"), [(100, 6), (400, 8), (200, 12)])
@pytest.mark.parametrize("refined", [False, True])
def test_fitted_weights_integrate_harmonics_exactly(n, lmax, refined):
    points = refined_fibonacci_points(n) if refined else fibonacci_points(n)
    w = fit_quadrature_weights(points, lmax)
    integrals = spherical_harmonics(lmax, points).T @ w  # [(lmax+1)^2]
    want = torch.zeros_like(integrals)
    want[0] = 4 * math.pi
    torch.testing.assert_close(integrals, want, rtol=0, atol=1e-11)
    assert float(w.min()) > 0  # near-uniform, positive weights for a near-uniform set


def test_equal_weights_do_not_integrate_harmonics_exactly():
    """The fit is needed: equal weights on the plain lattice miss by far more than round-off."""
    points = fibonacci_points(100)
    integrals = spherical_harmonics(6, points).T @ torch.full(
        (100,), 4 * math.pi / 100, dtype=DTYPE
    )
    assert integrals[1:].abs().max() > 1e-4


def _coefficients(lmax: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, (lmax + 1) ** 2, 4, dtype=DTYPE, generator=gen)


TRANSFORMS = {
    "fib-plain": lambda lmax, inv: SphericalTransform.fibonacci(lmax, 100, False, inv),
    "fib-refined": lambda lmax, inv: SphericalTransform.fibonacci(lmax, 100, True, inv),
    "lat-long": lambda lmax, inv: SphericalTransform.lat_long(lmax, 10, 10, inv),
}


@pytest.mark.parametrize("inverse", ["quadrature", "lstsq"])
@pytest.mark.parametrize("lmax", [1, 3, 4])
@pytest.mark.parametrize("kind", sorted(TRANSFORMS))
def test_round_trip_of_band_limited_coefficients(kind, lmax, inverse):
    t = TRANSFORMS[kind](lmax, inverse)
    c = _coefficients(lmax, seed=lmax)
    samples = t.to_sphere(c)
    assert samples.shape == (3, t.num_points, 4)
    torch.testing.assert_close(t.from_sphere(samples), c, rtol=0, atol=1e-10)


def test_round_trip_fails_when_under_resolved():
    """30 points cannot resolve degree 6 ((6+1)^2 = 49 coefficients): the check has teeth."""
    for inverse in ("quadrature", "lstsq"):
        t = SphericalTransform.fibonacci(6, 30, True, inverse)
        c = _coefficients(6, seed=0)
        assert (t.from_sphere(t.to_sphere(c)) - c).abs().max() > 1e-2


def test_forward_evaluates_the_expansion_at_the_points():
    t = SphericalTransform.fibonacci(3, 64)
    c = _coefficients(3, seed=1)
    y = spherical_harmonics(3, t.points())  # [P, n]
    torch.testing.assert_close(t.to_sphere(c), torch.einsum("pi,bic->bpc", y, c))


@pytest.mark.parametrize(("lmax", "res_beta", "res_alpha"), [(2, 5, 5), (3, 10, 10), (4, 12, 9)])
def test_lat_long_matches_the_sphere_grid_module(lmax, res_beta, res_alpha):
    """Same points and quadrature as :class:`SphereGrid` ("integral" normalisation, which
    samples ``f / sqrt(4 pi)``), on any input, band-limited or not."""
    t = SphericalTransform.lat_long(lmax, res_beta, res_alpha)
    grid = SphereGrid(CoefficientLayout(lmax, lmax), res_beta, res_alpha, "l_major", "integral")
    c = _coefficients(lmax, seed=2)
    torch.testing.assert_close(t.to_sphere(c), grid.to_grid(c) * math.sqrt(4 * math.pi))
    f = torch.randn(
        3, res_beta * res_alpha, 4, dtype=DTYPE, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(t.from_sphere(f), grid.from_grid(f) / math.sqrt(4 * math.pi))
    assert float(t.weights().sum()) == pytest.approx(4 * math.pi, rel=1e-13)


def test_rotated_point_set_makes_a_point_wise_map_exactly_equivariant():
    """Sampling ``D c`` at ``R u`` gives the samples of ``c`` at ``u``: with the point set
    rotated along, ``from(g(to(x)))`` commutes with ``D`` for any point-wise ``g``."""
    lmax = 3
    t = SphericalTransform.fibonacci(lmax, 100)
    rot = random_rotation(4)
    d = wigner_from_rotation(lmax, rot)
    tr = t.rotated(rot)
    c = _coefficients(lmax, seed=5)
    dc = torch.einsum("ij,bjc->bic", d, c)
    torch.testing.assert_close(tr.to_sphere(dc), t.to_sphere(c), rtol=0, atol=1e-12)
    out = t.from_sphere(torch.tanh(t.to_sphere(c)))
    out_rot = tr.from_sphere(torch.tanh(tr.to_sphere(dc)))
    torch.testing.assert_close(out_rot, torch.einsum("ij,bjc->bic", d, out), rtol=0, atol=1e-12)
    # the fixed point set is not rotation-closed: the same map without rotating it is not exact
    fixed = t.from_sphere(torch.tanh(t.to_sphere(dc)))
    assert (fixed - torch.einsum("ij,bjc->bic", d, out)).abs().max() > 1e-6


def test_module_casts_constants_to_the_input_dtype():
    t = SphericalTransform.fibonacci(2, 40)
    c = _coefficients(2, seed=0).float()
    assert t.to_sphere(c).dtype == torch.float32
    assert "points=40" in repr(t)
