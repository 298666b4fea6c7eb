"""Real spherical harmonics: e3nn basis, component normalisation, rotation behaviour."""

import e3nn.o3
import pytest
import torch

from equicat.so3 import WignerD, edge_frames, num_coefficients, rotate_points, spherical_harmonics

from .so3_helpers import DTYPE, random_rotation, wigner_from_rotation


def _directions(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, 3, dtype=DTYPE, generator=gen)
    # the poles and the coordinate axes are where recursions and signs go wrong first
    axes = torch.tensor(
        [[0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]], dtype=DTYPE
    )
    return torch.cat((v, axes))


@pytest.mark.parametrize("lmax", [0, 1, 2, 3, 4, 5, 6])
def test_matches_e3nn_component_normalisation(lmax):
    v = _directions(64, seed=lmax) * 2.7  # unnormalised input
    ours = spherical_harmonics(lmax, v)
    ref = e3nn.o3.spherical_harmonics(
        list(range(lmax + 1)), v, normalize=True, normalization="component"
    )
    assert ours.shape == (v.shape[0], num_coefficients(lmax))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("lmax", [2, 6])
def test_component_normalisation_sums_to_2l_plus_1(lmax):
    y = spherical_harmonics(lmax, _directions(50, seed=1))
    for l_ in range(lmax + 1):
        block = y[:, l_ * l_ : (l_ + 1) ** 2]
        torch.testing.assert_close(
            block.pow(2).sum(1), torch.full_like(block[:, 0], 2.0 * l_ + 1), rtol=0, atol=1e-12
        )


def test_polar_axis_is_y_and_degree_one_is_xyz():
    v = _directions(20, seed=2)
    y = spherical_harmonics(1, v)
    unit = v / v.norm(dim=1, keepdim=True)
    # component normalisation: Y_1 = sqrt(3) (x, y, z)
    torch.testing.assert_close(y[:, 1:4], 3**0.5 * unit, rtol=0, atol=1e-13)
    # on the y axis only m = 0 survives
    on_y = spherical_harmonics(4, torch.tensor([[0.0, 1.0, 0.0]], dtype=DTYPE))[0]
    m0 = [l_ * l_ + l_ for l_ in range(5)]
    mask = torch.ones_like(on_y, dtype=torch.bool)
    mask[m0] = False
    assert on_y[mask].abs().max() < 1e-14
    sqrt_2l1 = torch.tensor([(2.0 * l_ + 1) ** 0.5 for l_ in range(5)], dtype=DTYPE)
    torch.testing.assert_close(on_y[m0], sqrt_2l1, rtol=0, atol=1e-13)


@pytest.mark.parametrize("lmax", [1, 3, 6])
def test_equivariance_under_edge_frame_rotations(lmax):
    """``Y(R p) = D(R) Y(p)`` for the edge-frame rotations and points not used to build D.

    ``R`` is read off the degree-1 block (``Y_1 = sqrt(3) (x, y, z)``, so ``D_1 = R``); the
    relation must then hold for every degree and any point.
    """
    edges = _directions(10, seed=3)
    points = torch.randn(30, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(4))
    d = WignerD(lmax)(edges)  # [E, n, n]
    rot = d[:, 1:4, 1:4]  # [E, 3, 3]
    lhs = spherical_harmonics(lmax, torch.einsum("eij,kj->eki", rot, points))  # [E, K, n]
    rhs = torch.einsum("eij,kj->eki", d, spherical_harmonics(lmax, points))
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-11)


@pytest.mark.parametrize("lmax", [2, 6])
def test_equivariance_under_euler_frames(lmax):
    """The same relation for the Euler frames of :func:`edge_frames` / :func:`rotate_points`."""
    edges = _directions(10, seed=5)
    points = torch.randn(30, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(6))
    frame = edge_frames(edges)
    rot = rotate_points(frame, torch.eye(3, dtype=DTYPE)).transpose(1, 2)  # [E, 3, 3]
    lhs = spherical_harmonics(lmax, rotate_points(frame, points))  # [E, K, n]
    for e in range(len(edges)):
        d = wigner_from_rotation(lmax, rot[e], seed=e)
        torch.testing.assert_close(lhs[e], spherical_harmonics(lmax, points) @ d.T,
                                   rtol=0, atol=1e-11)  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equivariance_under_random_rotations(seed):
    """The same relation with an arbitrary rotation and an independently fitted D."""
    lmax = 5
    rot = random_rotation(seed)
    d = wigner_from_rotation(lmax, rot, seed=seed + 10)
    p = _directions(40, seed=seed + 20)
    torch.testing.assert_close(
        spherical_harmonics(lmax, p @ rot.T),
        spherical_harmonics(lmax, p) @ d.T,
        rtol=0,
        atol=1e-11,
    )
    # D is block diagonal in l: rotations never mix degrees
    for l_ in range(lmax + 1):
        s = slice(l_ * l_, (l_ + 1) ** 2)
        off = d[s].clone()
        off[:, s] = 0
        assert off.abs().max() < 1e-11
