"""The optional cutoff envelope makes the energy continuous where an edge enters."""

from __future__ import annotations

import pytest
import torch
from ase import Atoms

from equicat.calculators import Predictor
from equicat.models import build

CUTOFF = 4.0
X_CROSS = (CUTOFF**2 - 1.0**2 - 0.5**2) ** 0.5  # atom 2 reaches atom 0's cutoff here


def _energy_fn(envelope: str):
    torch.manual_seed(0)
    model = build(
        "equiformer_v2",
        forces="conservative",
        envelope=envelope,
        max_neighbors=None,
        lmax=2,
        mmax=1,
        num_layers=2,
        sphere_channels=16,
        cutoff=CUTOFF,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    pred = Predictor(model, "cpu", "float64")

    def energy(x: float) -> float:
        atoms = Atoms("CuCuO", positions=[[0, 0, 0], [2.3, 0.3, 0.1], [x, 1.0, 0.5]])
        return float(pred.predict(atoms)[0]["energy"])

    return energy


def test_polynomial_envelope_is_continuous_at_cutoff():
    e = _energy_fn("polynomial")
    h = 1e-7
    jump = e(X_CROSS + h) - e(X_CROSS - h)
    slope = (e(X_CROSS - 1e-3) - e(X_CROSS - 2e-3)) / 1e-3
    assert abs(jump) < 10 * abs(slope) * 2 * h + 1e-12


def test_no_envelope_jumps_at_cutoff():
    """The published EquiformerV2 has no envelope: documents the size of the jump."""
    e = _energy_fn("none")
    assert abs(e(X_CROSS + 1e-7) - e(X_CROSS - 1e-7)) > 1e-5


def test_envelope_off_is_the_published_model():
    with pytest.raises(ValueError, match="envelope"):
        build("equiformer_v2", envelope="cosine")


def test_element_energies_are_added_per_atom():
    """``element_energies`` shifts each system by sum_i e[Z_i] and survives a checkpoint."""
    import tempfile

    from equicat import checkpoints

    torch.manual_seed(0)
    base = build("equiformer_v2", lmax=1, mmax=1, num_layers=1, sphere_channels=8, cutoff=4.0)
    refs = [0.0] * 30
    refs[29], refs[8] = -3.5, -1.25
    torch.manual_seed(0)
    shifted = build(
        "equiformer_v2",
        lmax=1,
        mmax=1,
        num_layers=1,
        sphere_channels=8,
        cutoff=4.0,
        element_energies=refs,
    )
    atoms = Atoms("Cu2O", positions=[[0, 0, 0], [2.4, 0, 0], [1.2, 1.5, 0]])
    e0 = Predictor(base, "cpu", "float64").predict(atoms)[0]["energy"]
    e1 = Predictor(shifted, "cpu", "float64").predict(atoms)[0]["energy"]
    assert e1 - e0 == pytest.approx(2 * -3.5 - 1.25, abs=1e-12)
    with tempfile.TemporaryDirectory() as tmp:
        path = checkpoints.save(shifted, f"{tmp}/m.pt")
        e2 = Predictor.from_checkpoint(path, "cpu", "float64").predict(atoms)[0]["energy"]
    assert e2 == pytest.approx(e1, abs=1e-12)
