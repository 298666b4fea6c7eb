"""Edge frames and Wigner-D matrices: on the axes, on (and next to) the frame's singular axis."""

import pytest
import torch

from equicat.so3 import WignerD, edge_frames, rotate_points, spherical_harmonics
from equicat.so3 import wigner as wigner_module

from .so3_helpers import DTYPE, wigner_from_rotation

Y_HAT = torch.tensor([0.0, 1.0, 0.0], dtype=DTYPE)

# named edges: generic ones, and the axes (+-y is where the plain Euler frame degenerates)
SPECIAL_EDGES = {
    "+y": [0.0, 1.0, 0.0],
    "-y": [0.0, -1.0, 0.0],
    "+y_long": [0.0, 3.7, 0.0],
    "-y_short": [0.0, -0.4, 0.0],
    "+x": [1.0, 0.0, 0.0],
    "-z": [0.0, 0.0, -1.0],
    "xz_plane": [0.6, 0.0, -0.8],
    "generic": [0.3, -0.8, 0.5],
}


def _edges(names=None) -> torch.Tensor:
    names = names or list(SPECIAL_EDGES)
    gen = torch.Generator().manual_seed(0)
    rand = torch.randn(16, 3, dtype=DTYPE, generator=gen)
    return torch.cat((torch.tensor([SPECIAL_EDGES[n] for n in names], dtype=DTYPE), rand))


def _singular_axis() -> torch.Tensor:
    """Where WignerD's frame has its (unavoidable) singular roll: ``Q^T y`` if the module
    pre-rotates edges by a fixed ``Q`` (equicat.so3.wigner.generic_rotation), else ``y``."""
    q = getattr(wigner_module, "generic_rotation", None)
    return q().T @ Y_HAT if q is not None else Y_HAT


def _assert_rotations_to_plus_y(rot: torch.Tensor, edges: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=DTYPE).expand_as(rot)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye, rtol=0, atol=1e-13)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(len(edges), dtype=DTYPE))
    unit = edges / edges.norm(dim=1, keepdim=True)
    torch.testing.assert_close(
        torch.einsum("eij,ej->ei", rot, unit), Y_HAT.expand_as(unit), rtol=0, atol=1e-13
    )


def test_euler_frame_is_a_proper_rotation_taking_the_edge_to_plus_y():
    edges = _edges()
    rot = rotate_points(edge_frames(edges), torch.eye(3, dtype=DTYPE)).transpose(1, 2)
    _assert_rotations_to_plus_y(rot, edges)


def test_wigner_frame_is_a_proper_rotation_taking_the_edge_to_plus_y():
    """The degree-1 block of D is the frame rotation itself (``Y_1 ~ (x, y, z)``)."""
    edges = torch.cat((_edges(), _singular_axis()[None], -2.0 * _singular_axis()[None]))
    _assert_rotations_to_plus_y(WignerD(2)(edges)[:, 1:4, 1:4], edges)


@pytest.mark.parametrize("lmax", [1, 3, 6])
def test_orthogonal_and_block_diagonal(lmax):
    d = WignerD(lmax)(_edges())
    n = d.shape[1]
    torch.testing.assert_close(
        d @ d.transpose(1, 2), torch.eye(n, dtype=DTYPE).expand_as(d), rtol=0, atol=1e-12
    )
    mask = torch.ones(n, n, dtype=torch.bool)
    for l_ in range(lmax + 1):
        mask[l_ * l_ : (l_ + 1) ** 2, l_ * l_ : (l_ + 1) ** 2] = False
    assert d[:, mask].abs().max() == 0.0


@pytest.mark.parametrize("lmax", [2, 4])
@pytest.mark.parametrize("name", list(SPECIAL_EDGES))
def test_takes_edge_harmonics_to_polar_axis(lmax, name):
    """``D(r) Y(r_hat) = Y(y_hat)``: the edge lands on +y, including edges already on +-y."""
    edge = torch.tensor([SPECIAL_EDGES[name]], dtype=DTYPE)
    d = WignerD(lmax)(edge)[0]
    y_edge = spherical_harmonics(lmax, edge)[0]
    torch.testing.assert_close(d @ y_edge, spherical_harmonics(lmax, Y_HAT), rtol=0, atol=1e-13)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("tilt", [0.0, 1e-12, 1e-9, 1e-6, 1e-3])
def test_near_the_singular_axis_error_is_bounded_by_the_tilt(tilt, sign):
    """Edges within ~1e-7 rad of the frame's singular axis are snapped onto it: error O(tilt)."""
    lmax = 4
    axis = sign * _singular_axis()
    ortho = torch.linalg.svd(axis[None]).Vh[1:]  # [2, 3] unit vectors orthogonal to axis
    edge = (axis + tilt * ortho[0] - 0.5 * tilt * ortho[1])[None]
    d = WignerD(lmax)(edge)[0]
    err = (d @ spherical_harmonics(lmax, edge)[0] - spherical_harmonics(lmax, Y_HAT)).abs().max()
    assert err <= 20 * tilt + 1e-13


@pytest.mark.parametrize("lmax", [2, 5])
def test_matches_wigner_matrix_fitted_from_its_rotation(lmax):
    """Every degree block is the Wigner matrix of the rotation in the degree-1 block."""
    edges = _edges()
    d = WignerD(lmax)(edges)
    for k in range(len(edges)):
        want = wigner_from_rotation(lmax, d[k, 1:4, 1:4])
        torch.testing.assert_close(d[k], want, rtol=0, atol=1e-11)


def test_deterministic_and_independent_of_the_batch():
    """Same edge -> same frame, bitwise, however often and wherever it appears in the batch."""
    wigner = WignerD(3)
    edges = _edges()
    first, second = wigner(edges), wigner(edges.clone())
    assert torch.equal(first, second)
    reversed_batch = wigner(edges.flip(0)).flip(0)
    torch.testing.assert_close(reversed_batch, first, rtol=0, atol=1e-15)
    single = torch.stack([wigner(e[None])[0] for e in edges])
    torch.testing.assert_close(single, first, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["+y", "-y", "+y_long", "-y_short", "singular", "-singular"])
def test_gradient_is_finite_on_special_axes(name):
    if name.endswith("singular"):
        xyz = (-1.0 if name[0] == "-" else 1.0) * _singular_axis()
    else:
        xyz = torch.tensor(SPECIAL_EDGES[name], dtype=DTYPE)
    edge = xyz[None].clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(1)
    weights = torch.randn(16, 16, dtype=DTYPE, generator=gen)
    (WignerD(3)(edge)[0] * weights).sum().backward()
    assert torch.isfinite(edge.grad).all()


def _roll_invariant_scalar(lmax: int):
    """``g(r) = a . D(r)^T M D(r) b`` with ``M`` diagonal and equal on ``+-m``.

    ``M`` commutes with every roll about y, so ``g`` does not depend on how the frame's roll
    is chosen: it is a smooth function of the edge direction even on the y axis, and its
    gradient is what force computations through the edge frames rely on.
    """
    gen = torch.Generator().manual_seed(7)
    per_lm = torch.randn(lmax + 1, lmax + 1, dtype=DTYPE, generator=gen)
    diag = torch.stack([per_lm[l_, abs(m)] for l_ in range(lmax + 1) for m in range(-l_, l_ + 1)])
    a, b = torch.randn(2, (lmax + 1) ** 2, dtype=DTYPE, generator=gen)
    wigner = WignerD(lmax)

    def g(edge: torch.Tensor) -> torch.Tensor:
        d = wigner(edge[None])[0]
        return a @ d.T @ (diag * (d @ b))

    return g


def _gradient_error(edge: torch.Tensor) -> float:
    g = _roll_invariant_scalar(lmax=2)
    edge = edge.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(g(edge), edge)
    h = 1e-5
    fd = torch.stack([
        (g(edge.detach() + h * e) - g(edge.detach() - h * e)) / (2 * h)
        for e in torch.eye(3, dtype=DTYPE)
    ])  # fmt: skip
    return float((grad - fd).abs().max() / fd.abs().max().clamp_min(1e-3))


# lattice directions of axis-aligned cells: bonds and cell vectors take them exactly
LATTICE_DIRECTIONS = {
    "+x": [1.0, 0.0, 0.0], "-x": [-1.0, 0.0, 0.0], "+y": [0.0, 1.0, 0.0],
    "-y": [0.0, -2.0, 0.0], "+z": [0.0, 0.0, 1.0], "-z": [0.0, 0.0, -3.0],
    "[110]": [1.0, 1.0, 0.0], "[011]": [0.0, 1.0, 1.0], "[1-11]": [1.0, -1.0, 1.0],
    "near+y": [1e-9, 1.0, 0.0], "generic": [0.3, -0.8, 0.5],
}  # fmt: skip


@pytest.mark.parametrize("name", list(LATTICE_DIRECTIONS))
def test_gradient_of_roll_invariant_function_matches_finite_differences(name):
    """dD/dr must carry the tilt of the frame, or forces through edge frames are wrong."""
    assert _gradient_error(torch.tensor(LATTICE_DIRECTIONS[name], dtype=DTYPE)) < 1e-7


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known limitation (so3/wigner.py edge_frames): edges within 1e-7 rad of the frame's "
    "singular axis take a constant frame, so dD/dr = 0 there and the tilt derivative of "
    "roll-invariant quantities (forces, stress) is lost",
)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gradient_of_roll_invariant_function_on_the_singular_axis(sign):
    assert _gradient_error(sign * _singular_axis()) < 1e-7
