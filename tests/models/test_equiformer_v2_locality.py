"""EquiformerV2 locality: the cutoff, separated fragments, isolated atoms, smoothness."""

import numpy as np
import pytest
import torch
from ase import Atoms

from .physics import predict, small_equiformer
from .structures import STRUCTURES


@pytest.fixture(scope="module")
def model():
    return small_equiformer(forces="conservative")


def co_with_cu(distance: float, cutoff: float, crowded: bool = False) -> Atoms:
    """CO with a Cu atom at ``distance`` from C, every other pair beyond ``distance``.

    ``crowded`` adds a second Cu 2.4 Å behind the first, so that the Cu crossing C's cutoff
    keeps a neighbour of its own; otherwise C is its only possible neighbour.
    """
    x = 0.3 * distance / cutoff
    u = np.array([x, 0.0, -np.sqrt(distance**2 - x**2)]) / distance  # below C, away from O
    positions = [[0.0, 0.0, 0.0], [0.1, 0.05, 1.13], distance * u]
    if crowded:
        positions.append((distance + 2.4) * u + [0.3, 0.0, 0.0])
    return Atoms("COCu" + ("Cu" if crowded else ""), positions=positions)


def test_atom_beyond_the_cutoff_has_no_effect(model):
    rc = model.cutoff
    near, far = predict(model, co_with_cu(rc + 1e-6, rc)), predict(model, co_with_cu(rc + 3, rc))
    torch.testing.assert_close(near["energy"], far["energy"], rtol=1e-14, atol=0)
    torch.testing.assert_close(near["forces"], far["forces"], rtol=0, atol=1e-14)
    assert near["forces"][2].abs().max() == 0.0


@pytest.mark.parametrize("pair", [("ethanol", "ethanol"), ("ethanol", "co")])
def test_energy_is_additive_over_separated_fragments(model, pair):
    """Fragments further apart than the cutoff: E(A + B) = E(A) + E(B), forces unchanged."""
    rc = model.cutoff
    frags = [STRUCTURES["ethanol"]() if p == "ethanol" else co_with_cu(rc + 3, rc)[:2]
             for p in pair]  # fmt: skip
    b = frags[1].copy()
    b.positions += [0.0, 0.0, 2 * rc + 10.0]
    joined = frags[0] + b
    e_sum = sum(float(predict(model, f)["energy"][0]) for f in frags)
    out = predict(model, joined)
    assert abs(float(out["energy"][0]) - e_sum) < 1e-12 * max(1.0, abs(e_sum))
    forces = torch.cat([predict(model, f)["forces"] for f in frags])
    torch.testing.assert_close(out["forces"], forces, rtol=0, atol=1e-12)


def _jump(model, delta: float, crowded: bool = False) -> tuple[float, float]:
    """``E(rc - delta) - E(rc + delta)`` and the largest force change, Cu crossing C's cutoff."""
    rc = model.cutoff
    inside = predict(model, co_with_cu(rc - delta, rc, crowded))
    outside = predict(model, co_with_cu(rc + delta, rc, crowded))
    return (float(inside["energy"][0] - outside["energy"][0]),
            float((inside["forces"] - outside["forces"]).abs().max()))  # fmt: skip


def test_energy_step_at_the_cutoff_is_a_clean_finite_step(model, error_table):
    """Characterises the discontinuity: E(rc - d) - E(rc + d) converges linearly to a fixed,
    finite step as d -> 0 (no blow-up, no noise): E is smooth on either side of the cutoff."""
    deltas = (1e-3, 1e-5, 1e-7)
    jumps = [_jump(model, d)[0] for d in deltas]
    error_table.append("|E(rc-0) - E(rc+0)| (eV), CO + Cu", abs(jumps[-1]), float("nan"))
    print("energy step at the cutoff:", jumps)
    assert abs(jumps[-1]) > 1e-3
    # linear convergence: the slope between the first two equals the slope between the last two
    slope_a = (jumps[0] - jumps[1]) / (deltas[0] - deltas[1])
    slope_b = (jumps[1] - jumps[2]) / (deltas[1] - deltas[2])
    assert abs(slope_a - slope_b) < 1e-2 * abs(slope_a)


NO_ENVELOPE = pytest.mark.xfail(
    strict=True,
    reason="model property: EquiformerV2 (as published, envelope='none') has no radial envelope; "
    "its Gaussian distance basis is ~1 at the cutoff and a new neighbour enters the attention "
    "softmax and the edge-degree sum at full weight, so E steps (~6e-2 eV here) at the cutoff",
)


@pytest.mark.parametrize(
    ("envelope", "crowded"),
    [
        pytest.param("none", True, marks=NO_ENVELOPE),
        pytest.param("none", False, marks=NO_ENVELOPE),
        ("polynomial", True),
        ("polynomial", False),
    ],
    ids=["none-crowded", "none-lone", "polynomial-crowded", "polynomial-lone"],
)
def test_energy_and_forces_are_continuous_at_the_cutoff(envelope, crowded, error_table):
    model = small_equiformer(forces="conservative", envelope=envelope)
    d_energy, d_forces = _jump(model, 1e-7, crowded)
    error_table.append(f"E step at rc, envelope={envelope}", abs(d_energy), 1e-10)
    error_table.append(f"F step at rc, envelope={envelope}", d_forces, 1e-8)
    # the envelope vanishes with two derivatives: steps O(d^3) in E and O(d^2) in F
    assert abs(d_energy) < 1e-10 and d_forces < 1e-8


@pytest.mark.parametrize("mode", ["direct", "conservative"])
def test_isolated_atoms_have_finite_energy_and_no_force(mode):
    model = small_equiformer(forces=mode)
    one = predict(model, Atoms("Cu"))
    two = predict(model, Atoms("Cu2", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 20.0]]))
    assert torch.isfinite(one["energy"]).all()
    torch.testing.assert_close(two["energy"], 2 * one["energy"], rtol=1e-12, atol=0)
    assert two["forces"].abs().max() == 0.0
