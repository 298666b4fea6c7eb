"""An EST model saved as a checkpoint predicts the same through EquiCatCalculator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equicat import checkpoints
from equicat.calculators import EquiCatCalculator, Predictor
from equicat.models import EST, build

from ..helpers import cu_slab

CONFIG = dict(
    num_layers=1, lmax=2, mmax=1, sphere_channels=8, attn_hidden_channels=8, num_heads=2,
    attn_alpha_channels=4, attn_value_channels=2, ffn_hidden_channels=8, edge_channels=8,
    num_distance_basis=16, grid_resolution=8, cutoff=4.0, max_neighbors=12,
    max_num_elements=30, est_points=40, est_heads=2, est_head_channels=4,
    est_expert_channels=8, est_steerable_experts=2, est_spherical_experts=1, est_top_k=2,
)  # fmt: skip


@pytest.mark.parametrize("forces", ["direct", "conservative"])
def test_checkpoint_round_trip_through_the_calculator(tmp_path, forces):
    torch.manual_seed(0)
    model = build("est", **CONFIG, forces=forces)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = checkpoints.save(model, tmp_path / "est.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["model_name"] == "est" and raw["model_config"]["est_points"] == 40

    atoms = cu_slab(0, fixed=(0, 1))
    atoms.calc = EquiCatCalculator.from_checkpoint(path, device="cpu", dtype="float64")
    assert isinstance(atoms.calc.predictor.model, EST)
    ref = cu_slab(0, fixed=(0, 1))
    ref.calc = EquiCatCalculator(Predictor(model, device="cpu", dtype="float64"))
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(), rtol=0, atol=1e-12)
    assert np.abs(ref.get_forces()[2:]).max() > 1e-6  # a real prediction, not zeros
