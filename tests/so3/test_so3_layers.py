"""Exactly equivariant layers: SO(2) linear maps (rolls), SO(3) linear maps and layer norms."""

import math

import pytest
import torch

from equicat.so3 import CoefficientLayout, SeparableLayerNorm, SO2Linear, SO3Linear

from .so3_helpers import (
    DTYPE,
    random_rotation,
    rotate_coefficients,
    rotation_about_y,
    wigner_from_rotation,
)


def _perturb(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """float64 and random weights everywhere (no unit gains or zero biases left)."""
    module = module.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, dtype=p.dtype, generator=gen))
    return module


def _roll_wigner(layout: CoefficientLayout, angles: list[float]) -> torch.Tensor:
    """``[E, n, n]`` m-major Wigner matrices of rolls about y (they never mix |m|)."""
    idx = list(layout.m_major)
    mats = [wigner_from_rotation(layout.lmax, rotation_about_y(a))[idx][:, idx] for a in angles]
    return torch.stack(mats)


@pytest.mark.parametrize(("lmax", "mmax"), [(2, 1), (3, 2), (4, 4), (2, 0)])
@pytest.mark.parametrize("with_radial", [False, True])
def test_so2_linear_commutes_with_rolls_about_the_edge(lmax, mmax, with_radial):
    layout = CoefficientLayout(lmax, mmax)
    torch.manual_seed(lmax * 10 + mmax)
    conv = _perturb(SO2Linear(layout, 3, 4, extra_m0_channels=5), seed=1)
    angles = [0.3, 1.1, -2.0, math.pi, 2.9]
    d = _roll_wigner(layout, angles)  # [E, n, n]
    n = layout.size
    torch.testing.assert_close(
        d @ d.transpose(1, 2), torch.eye(n, dtype=DTYPE).expand_as(d), rtol=0, atol=1e-12
    )
    if mmax > 0:  # the rolls are not trivial
        assert (d - torch.eye(n, dtype=DTYPE)).abs().amax(dim=(1, 2)).min() > 0.1
    x = torch.randn(len(angles), n, 3, dtype=DTYPE)
    radial = torch.randn(len(angles), conv.radial_size, dtype=DTYPE) if with_radial else None
    y, extra = conv(x, radial)
    y_rolled, extra_rolled = conv(torch.einsum("eij,ejc->eic", d, x), radial)
    assert y.shape == (len(angles), n, 4) and extra.shape == (len(angles), 5)
    torch.testing.assert_close(y_rolled, torch.einsum("eij,ejc->eic", d, y), rtol=0, atol=1e-12)
    torch.testing.assert_close(extra_rolled, extra, rtol=0, atol=1e-12)


def test_so2_linear_mixes_orders_only_within_their_block():
    """Output order m depends only on input order m (eSCN's block-diagonal SO(2) structure)."""
    layout = CoefficientLayout(3, 2)
    conv = _perturb(SO2Linear(layout, 2, 2), seed=2)
    x = torch.randn(4, layout.size, 2, dtype=DTYPE, requires_grad=True)
    y, _ = conv(x)
    order_of = torch.tensor([abs(i - int(i**0.5) ** 2 - int(i**0.5)) for i in layout.m_major])
    for m in range(layout.mmax + 1):
        (grad,) = torch.autograd.grad(y[:, order_of == m].sum(), x, retain_graph=True)
        assert grad[:, order_of != m].abs().max() == 0.0
        assert grad[:, order_of == m].abs().max() > 0.0


@pytest.mark.parametrize("lmax", [1, 3, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_so3_linear_is_equivariant(lmax, seed):
    torch.manual_seed(seed)
    lin = _perturb(SO3Linear(4, 6, lmax), seed=seed)
    d = wigner_from_rotation(lmax, random_rotation(seed))
    x = torch.randn(7, (lmax + 1) ** 2, 4, dtype=DTYPE)
    torch.testing.assert_close(
        lin(rotate_coefficients(d, x)), rotate_coefficients(d, lin(x)), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("lmax", [1, 2, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_separable_layer_norm_is_equivariant(lmax, seed):
    torch.manual_seed(seed)
    norm = _perturb(SeparableLayerNorm(lmax, 5), seed=seed)
    d = wigner_from_rotation(lmax, random_rotation(seed + 3))
    x = torch.randn(6, (lmax + 1) ** 2, 5, dtype=DTYPE)
    torch.testing.assert_close(
        norm(rotate_coefficients(d, x)), rotate_coefficients(d, norm(x)), rtol=0, atol=1e-12
    )


def test_separable_layer_norm_normalises_each_part():
    """Degree 0: zero mean / unit variance over channels; l > 0: unit balanced mean square."""
    lmax, channels = 3, 6
    norm = SeparableLayerNorm(lmax, channels, eps=1e-14).double()
    x = 7.0 * torch.randn(4, (lmax + 1) ** 2, channels, dtype=DTYPE) + 3.0
    out = norm(x)
    torch.testing.assert_close(out[:, 0].mean(1), torch.zeros(4, dtype=DTYPE), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        out[:, 0].var(1, unbiased=False), torch.ones(4, dtype=DTYPE), atol=1e-10, rtol=0
    )
    balanced = sum(
        out[:, l_ * l_ : (l_ + 1) ** 2].pow(2).sum(1) / (lmax * (2 * l_ + 1))
        for l_ in range(1, lmax + 1)
    ).mean(1)  # [N]
    # 1e-7, not 1e-12: see test_separable_layer_norm_balance_is_exact_in_float64
    torch.testing.assert_close(balanced, torch.ones(4, dtype=DTYPE), atol=1e-7, rtol=0)
    # scale invariance of the whole map
    torch.testing.assert_close(norm(3.0 * x), out, atol=1e-12, rtol=0)


def test_separable_layer_norm_balance_is_exact_in_float64():
    lmax = 3
    norm = SeparableLayerNorm(lmax, 2).double()
    exact = torch.tensor(
        [1.0 / (lmax * (2 * l_ + 1)) for l_ in range(1, lmax + 1) for _ in range(2 * l_ + 1)],
        dtype=DTYPE,
    )
    torch.testing.assert_close(norm.const.get("balance", exact), exact, rtol=1e-15, atol=0)
