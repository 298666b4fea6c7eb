"""Direct closed-form spherical harmonics: e3nn agreement for any degree set, rotation law."""

import e3nn.o3
import pytest
import torch

from equicat.so3 import spherical_harmonics
from equicat.so3.harmonics_direct import (
    LMAX_DIRECT,
    DirectHarmonics,
    direct_spherical_harmonics,
)

from .so3_helpers import DTYPE, random_rotation, wigner_from_rotation

SETS = [[0, 1, 2], [0, 3, 4, 5, 6], list(range(7)), [10], [2, 0, 7], list(range(11))]


def _directions(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, 3, dtype=DTYPE, generator=gen) * 3.1
    axes = torch.tensor(
        [[0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]], dtype=DTYPE
    )
    return torch.cat((v, axes))


@pytest.mark.parametrize("degrees", SETS, ids=str)
def test_matches_e3nn_for_any_degree_set(degrees):
    v = _directions(200, seed=len(degrees))
    ours = direct_spherical_harmonics(degrees, v)
    ref = e3nn.o3.spherical_harmonics(degrees, v, normalize=True, normalization="component")
    assert ours.shape == ref.shape == (v.shape[0], sum(2 * l_ + 1 for l_ in degrees))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    # measured: ~5e-15 in float64 up to l = 10; keep a bound that still catches a wrong term
    assert float((ours - ref).abs().max()) < 1e-12


def test_module_equals_function_and_the_recursive_harmonics():
    v = _directions(64, seed=7)
    full = direct_spherical_harmonics(list(range(8)), v)
    torch.testing.assert_close(DirectHarmonics(list(range(8)))(v), full, rtol=0, atol=0)
    torch.testing.assert_close(full, spherical_harmonics(7, v), rtol=0, atol=1e-12)


@pytest.mark.parametrize("l_", [3, 6, 10])
def test_rotation_acts_by_the_wigner_d_of_the_recursive_harmonics(l_):
    v = _directions(40, seed=l_)
    rot = random_rotation(l_)
    d = wigner_from_rotation(l_, rot)[l_ * l_ :, l_ * l_ :]  # e3nn's own D is float32-accurate
    got = direct_spherical_harmonics([l_], v @ rot.T)
    want = direct_spherical_harmonics([l_], v) @ d.T
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_float32_error_is_small():
    v = _directions(200, seed=3)
    ref = direct_spherical_harmonics([LMAX_DIRECT], v)
    got = direct_spherical_harmonics([LMAX_DIRECT], v.float())
    assert float((got.double() - ref).abs().max()) < 5e-5


@pytest.mark.parametrize("degrees", [[], [11], [-1]])
def test_bad_degrees_are_refused(degrees):
    with pytest.raises(ValueError, match="degrees"):
        direct_spherical_harmonics(degrees, _directions(3, 0))
