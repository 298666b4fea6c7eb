"""fairchem-1.x eSCN files: config mapping, parameter renaming and dispatch in ``load``.

The files here are written in the reference's layout from an equicat model (parameter names
as the fairchem-1.10 eSCN module has them); parity with real reference outputs is in
tests/integration/test_reference_parity.py.
"""

from __future__ import annotations

import re

import pytest
import torch

from equicat.checkpoints import load
from equicat.checkpoints.fairchem import FairchemImportError
from equicat.checkpoints.fairchem_escn import config_from_fairchem, convert_state_dict
from equicat.models.escn import Escn, EscnConfig

ATTRS = dict(
    use_pbc=True, regress_forces=True, otf_graph=True, max_neighbors=20, cutoff=6.0,
    num_layers=2, lmax_list=[3], mmax_list=[1], sphere_channels=8, hidden_channels=16,
    edge_channels=8, num_sphere_samples=32, distance_function="gaussian",
    basis_width_scalar=2.0,
)  # fmt: skip

# equicat name -> reference name (the inverse of the importer's renaming)
_TO_REF = [
    (r"atom_embedding\.", "sphere_embedding."),
    (r"sphere_harmonics$", "sphharm_weights.0"),
    (r"layers\.(\d+)\.message\.edge\.", r"layer_blocks.\1.message_block.edge_block."),
    (
        r"layers\.(\d+)\.message\.so2_(source|target)\.orders\.(\d+)\.",
        r"layer_blocks.\1.message_block.so2_block_\2.so2_conv.\3.",
    ),
    (
        r"layers\.(\d+)\.message\.so2_(source|target)\.",
        r"layer_blocks.\1.message_block.so2_block_\2.",
    ),
    (r"layers\.(\d+)\.update\.mlp\.0\.", r"layer_blocks.\1.fc1_sphere."),
    (r"layers\.(\d+)\.update\.mlp\.2\.", r"layer_blocks.\1.fc2_sphere."),
    (r"layers\.(\d+)\.update\.mlp\.4\.", r"layer_blocks.\1.fc3_sphere."),
    (r"energy_head\.", "energy_block."),
    (r"force_head\.", "force_block."),
]


def _reference_layout(model: Escn, legacy: bool) -> dict:
    state = {}
    for key, value in model.state_dict().items():
        for pattern, repl in _TO_REF:
            key, n = re.subn(pattern, repl, key, count=1)
            if n:
                break
        state["module." + key] = value
    state["module.distance_expansion.offset"] = torch.linspace(0, 6.0, 300)
    if legacy:
        config = {"model": "escn", "model_attributes": dict(ATTRS)}
    else:
        config = {"model": {"name": "escn", **ATTRS}}
    config["dataset"] = {"normalize_labels": True, "target_mean": -0.5, "target_std": 2.0}
    return {"state_dict": state, "config": config}


@pytest.mark.parametrize("legacy", [False, True])
def test_reference_layout_loads_as_escn(tmp_path, legacy):
    torch.manual_seed(0)
    config = EscnConfig(
        num_layers=2, lmax=3, mmax=1, sphere_channels=8, hidden_channels=16, edge_channels=8,
        num_distance_basis=300, num_sphere_samples=32, cutoff=6.0,
    )  # fmt: skip
    model = Escn(config)
    path = tmp_path / "escn.pt"
    torch.save(_reference_layout(model, legacy), path)
    ckpt = load(path)
    assert ckpt.model_name == "escn" and ckpt.source == "fairchem"
    built = ckpt.build()
    assert built.config.energy_mean == -0.5 and built.config.energy_std == 2.0
    assert built.config.force_std == 2.0  # grad_target_std falls back to target_std
    assert built.config.distance_basis_width == 2.0 and built.config.num_distance_basis == 300
    for key, value in model.state_dict().items():
        assert torch.equal(built.state_dict()[key], value), key


def test_unexpected_parameter_is_named():
    with pytest.raises(FairchemImportError, match="layer_blocks.0.mystery"):
        convert_state_dict({"module.layer_blocks.0.mystery.weight": torch.zeros(1)})


def test_other_distance_functions_are_refused():
    ckpt = {"config": {"model": {"name": "escn", **ATTRS, "distance_function": "sigmoid"}},
            "state_dict": {}}  # fmt: skip
    with pytest.raises(FairchemImportError, match="distance_function"):
        config_from_fairchem(ckpt)
