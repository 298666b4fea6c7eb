"""Radial bases and the smooth cutoff envelope."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from equicat.so3 import BesselBasis, GaussianBasis, PolynomialEnvelope, RadialMLP

from .so3_helpers import DTYPE


def _derivatives(f, d: torch.Tensor, order: int = 2) -> list[torch.Tensor]:
    """``[f, f', f'', ...]`` at ``d`` by repeated autograd."""
    d = d.clone().requires_grad_(True)
    out = [f(d)]
    for _ in range(order):
        (g,) = torch.autograd.grad(out[-1].sum(), d, create_graph=True)
        out.append(g)
    return [t.detach() for t in out]


@pytest.mark.parametrize("p", [3, 5, 6, 8])
@pytest.mark.parametrize("cutoff", [4.0, 6.0])
def test_envelope_value_and_two_derivatives_vanish_at_the_cutoff(p, cutoff):
    env = PolynomialEnvelope(cutoff, p)
    h = 1e-6  # Å below the cutoff: u ~ h^3, u' ~ h^2, u'' ~ h
    u, du, d2u = _derivatives(env, torch.tensor([cutoff - h], dtype=DTYPE))
    assert abs(u.item()) < 1e-13
    assert abs(du.item()) < 1e-8
    assert abs(d2u.item()) < 1e-3
    # ... but the third derivative does not, so the checks above are not trivially satisfied
    d = torch.tensor([cutoff - h], dtype=DTYPE, requires_grad=True)
    g = env(d)
    for _ in range(3):
        (g,) = torch.autograd.grad(g.sum(), d, create_graph=True)
    assert abs(g.item()) > 1e-2 / cutoff**3


@pytest.mark.parametrize("p", [5, 6])
def test_envelope_is_one_at_zero_decreasing_and_zero_beyond(p):
    cutoff = 5.0
    env = PolynomialEnvelope(cutoff, p)
    d = torch.linspace(0.0, cutoff, 501, dtype=DTYPE)
    u = env(d)
    assert u[0].item() == 1.0
    assert torch.all(u[1:] <= u[:-1] + 1e-15)
    beyond = torch.tensor([cutoff, cutoff + 1e-9, cutoff + 0.5, 2 * cutoff], dtype=DTYPE)
    values, grads, _ = _derivatives(env, beyond)
    assert torch.all(values == 0) and torch.all(grads == 0)


def _exact_envelope(d: float, cutoff: float, p: int) -> float:
    """The envelope polynomial evaluated in exact rational arithmetic."""
    x = Fraction(d) / Fraction(cutoff)
    u = (1 - Fraction((p + 1) * (p + 2), 2) * x**p + p * (p + 2) * x ** (p + 1)
         - Fraction(p * (p + 1), 2) * x ** (p + 2))  # fmt: skip
    return float(u)


@pytest.mark.parametrize("p", [5, 6])
def test_envelope_is_accurate_and_nonnegative_next_to_the_cutoff(p):
    cutoff = 5.0
    h = torch.tensor([1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7], dtype=DTYPE)
    got = PolynomialEnvelope(cutoff, p)(cutoff - h)
    assert torch.all(got >= 0)
    want = torch.tensor([_exact_envelope(cutoff - float(x), cutoff, p) for x in h], dtype=DTYPE)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)


def test_bessel_basis_shape_limit_and_zeros():
    cutoff, num = 5.0, 8
    basis = BesselBasis(cutoff, num).double()
    d = torch.tensor([1e-6, 0.7, 2.5, cutoff], dtype=DTYPE)
    b = basis(d)
    assert b.shape == (4, num)
    k = torch.arange(1, num + 1, dtype=DTYPE)
    # tolerances 1e-6, not 1e-12: see test_radial_bases_are_exact_in_float64
    # d -> 0: sqrt(2/c) k pi / c
    torch.testing.assert_close(b[0], math.sqrt(2 / cutoff) * k * math.pi / cutoff, rtol=1e-6,
                               atol=0)  # fmt: skip
    # every basis function vanishes at the cutoff
    assert b[-1].abs().max() < 1e-6
    ref = math.sqrt(2 / cutoff) * torch.sin(k * math.pi * d[1:3, None] / cutoff) / d[1:3, None]
    torch.testing.assert_close(b[1:3], ref, rtol=0, atol=1e-6)


def test_bessel_basis_is_orthonormal_with_weight_d_squared():
    """``int_0^c d^2 B_j(d) B_k(d) dd = delta_jk``."""
    cutoff, num = 5.0, 6
    x, w = np.polynomial.legendre.leggauss(80)
    d = torch.tensor(0.5 * cutoff * (x + 1), dtype=DTYPE)
    w = torch.tensor(0.5 * cutoff * w, dtype=DTYPE)
    b = BesselBasis(cutoff, num).double()(d)  # [Q, num]
    gram = torch.einsum("q,qj,qk->jk", w * d**2, b, b)
    torch.testing.assert_close(gram, torch.eye(num, dtype=DTYPE), rtol=0, atol=1e-6)


def test_gaussian_basis_peaks_at_the_centres_with_the_documented_width():
    start, stop, num, width = 0.0, 5.0, 11, 2.0
    basis = GaussianBasis(start, stop, num, width).double()
    delta = (stop - start) / (num - 1)
    centres = torch.linspace(start, stop, num, dtype=DTYPE)
    g = basis(centres)
    assert g.shape == (num, num)
    torch.testing.assert_close(torch.diagonal(g), torch.ones(num, dtype=DTYPE), rtol=0, atol=1e-12)
    # one width (w * delta) from its centre a Gaussian is exp(-1/2)
    g_off = basis(centres[3:4] + width * delta)[0, 3]
    assert abs(g_off.item() - math.exp(-0.5)) < 1e-7
    # each basis function is largest at its own centre
    assert torch.equal(g.argmax(dim=0), torch.arange(num))


def test_radial_mlp_shapes():
    mlp = RadialMLP([7, 5, 5, 3]).double()
    assert mlp(torch.randn(4, 7, dtype=DTYPE)).shape == (4, 3)


@pytest.mark.parametrize("kind", ["gaussian", "bessel"])
def test_radial_bases_are_exact_in_float64(kind):
    cutoff = 5.0
    d = torch.linspace(0.3, cutoff, 9, dtype=DTYPE)
    if kind == "gaussian":
        num = 32
        centres = torch.linspace(0.0, cutoff, num, dtype=DTYPE)
        ref = torch.exp(-0.5 * (d[:, None] - centres) ** 2 / (2.0 * cutoff / (num - 1)) ** 2)
        got = GaussianBasis(0.0, cutoff, num).double()(d)
    else:
        k = torch.arange(1, 9, dtype=DTYPE)
        ref = math.sqrt(2 / cutoff) * torch.sin(k * math.pi * d[:, None] / cutoff) / d[:, None]
        got = BesselBasis(cutoff, 8).double()(d)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
