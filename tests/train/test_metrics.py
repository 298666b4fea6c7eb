from __future__ import annotations

import numpy as np
import pytest

from equicat.train.metrics import is2re_metrics, s2ef_metrics, target_metrics

# two structures (2 atoms, 1 atom); every error below is worked out by hand
ENERGY, ENERGY_TRUE, NATOMS = [1.01, 5.0], [1.0, 5.5], [2, 1]
FORCES_TRUE = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
FORCES = np.array([[1.01, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, -3.0]])  # same, 90°, 180°


def test_s2ef_metrics_by_hand():
    m = s2ef_metrics(ENERGY, ENERGY_TRUE, NATOMS, FORCES, FORCES_TRUE)
    assert m["energy_mae"] == pytest.approx((0.01 + 0.5) / 2)
    assert m["energy_mse"] == pytest.approx((0.01**2 + 0.5**2) / 2)
    assert m["energy_mae_per_atom"] == pytest.approx((0.005 + 0.5) / 2)
    assert m["energy_within_threshold"] == 0.5
    assert m["force_mae"] == pytest.approx((0.01 + 2 + 2 + 6) / 9)
    assert m["force_x_mae"] == pytest.approx(0.01 / 3)
    assert m["force_y_mae"] == pytest.approx(2 / 3)
    assert m["force_z_mae"] == pytest.approx(8 / 3)
    assert m["force_l2_mae"] == pytest.approx((0.01 + np.sqrt(8) + 6) / 3)
    assert m["force_cosine"] == pytest.approx((1 + 0 - 1) / 3)
    assert m["force_magnitude_error"] == pytest.approx(0.01 / 3)
    # structure 0: |dE| = 0.01 but atom 1 is 2 eV/Å off; structure 1: |dE| = 0.5
    assert m["energy_forces_within_threshold"] == 0.0
    assert (m["structures"], m["scored_atoms"]) == (2, 3)


def test_s2ef_metrics_score_only_the_given_atoms():
    scored = np.array([True, False, True])  # atom 1 (the 2 eV/Å error) not scored
    m = s2ef_metrics(ENERGY, ENERGY_TRUE, NATOMS, FORCES, FORCES_TRUE, scored)
    assert m["force_mae"] == pytest.approx((0.01 + 6) / 6)
    assert m["force_cosine"] == pytest.approx(0.0)
    assert m["energy_forces_within_threshold"] == 0.5  # structure 0 now passes
    assert m["scored_atoms"] == 2


@pytest.mark.parametrize(
    ("de", "df", "ewt", "efwt"),
    [(0.019, 0.029, 1.0, 1.0), (0.021, 0.0, 0.0, 0.0), (0.0, 0.031, 1.0, 0.0)],
)
def test_thresholds_are_oc20s(de, df, ewt, efwt):
    forces_true = np.zeros((2, 3))
    forces = forces_true.copy()
    forces[1, 2] = -df  # the largest component error counts, whatever its sign
    m = s2ef_metrics([de], [0.0], [2], forces, forces_true)
    assert (m["energy_within_threshold"], m["energy_forces_within_threshold"]) == (ewt, efwt)


def test_efwt_matches_a_loop_over_structures():
    rng = np.random.default_rng(0)
    natoms = rng.integers(1, 6, 40)
    n = int(natoms.sum())
    ft = rng.normal(size=(n, 3))
    f = ft + rng.normal(scale=0.02, size=(n, 3))
    et = rng.normal(size=40)
    e = et + rng.normal(scale=0.02, size=40)
    expected, start = [], 0
    for b, k in enumerate(natoms):
        worst = np.abs(f[start : start + k] - ft[start : start + k]).max()
        expected.append(abs(e[b] - et[b]) < 0.02 and worst < 0.03)
        start += k
    m = s2ef_metrics(e, et, natoms, f, ft)
    assert 0 < np.mean(expected) < 1
    assert m["energy_forces_within_threshold"] == pytest.approx(np.mean(expected))


def test_perfect_predictions():
    m = s2ef_metrics(ENERGY_TRUE, ENERGY_TRUE, NATOMS, FORCES_TRUE, FORCES_TRUE)
    assert m["energy_mae"] == m["force_mae"] == 0.0
    assert m["force_cosine"] == pytest.approx(1.0)
    assert m["energy_within_threshold"] == m["energy_forces_within_threshold"] == 1.0


def test_bad_shapes_and_no_scored_atom_are_refused():
    with pytest.raises(ValueError, match="forces must be"):
        s2ef_metrics(ENERGY, ENERGY_TRUE, NATOMS, FORCES[:2], FORCES_TRUE[:2])
    with pytest.raises(ValueError, match="no atom is scored"):
        s2ef_metrics(ENERGY, ENERGY_TRUE, NATOMS, FORCES, FORCES_TRUE, np.zeros(3, bool))


def test_is2re_and_target_metrics_by_hand():
    m = is2re_metrics([1.0, 2.0, 3.0], [1.01, 2.5, 2.0], [1, 5, 10])
    assert m["energy_mae"] == pytest.approx((0.01 + 0.5 + 1.0) / 3)
    assert m["energy_within_threshold"] == pytest.approx(1 / 3)
    assert m["energy_mae_per_atom"] == pytest.approx((0.01 + 0.1 + 0.1) / 3)
    t = target_metrics({"U0": [1.0, 2.0], "mu": [0.0]}, {"U0": [1.5, 2.0], "H": [0.0]})
    assert set(t) == {"U0"}
    assert t["U0"]["mae"] == pytest.approx(0.25)
    assert t["U0"]["rmse"] == pytest.approx(np.sqrt(0.125))
    with pytest.raises(ValueError, match="no target in common"):
        target_metrics({"mu": [0.0]}, {"H": [0.0]})
