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
