"""Import of fairchem-1.x SCN files, without the reference: a synthetic file in the reference's
layout (parameter names and attributes as fairchem-core 1.10 writes them) built from an equicat
model must load back to the same predictions."""

from __future__ import annotations

import re

import pytest
import torch

from equicat.checkpoints import load
from equicat.checkpoints.fairchem import FairchemImportError
from equicat.data import AtomicGraph
from equicat.models.scn import SCN, SCNConfig

from ..helpers import cu_slab

# equicat name -> fairchem-1.x name (the inverse of the importer's table, written out)
_TO_REFERENCE = [
    (r"^atom_embedding\.", "sphere_embedding."),
    (r"^blocks\.(\d+)\.edge_embedding\.distance_proj\.", r"edge_blocks.\1.dist_block.fc1_dist."),
    (r"^blocks\.(\d+)\.edge_embedding\.(source|target)_embedding\.",
     r"edge_blocks.\1.dist_block.\2_embedding."),
    (r"^blocks\.(\d+)\.edge_embedding\.edge_proj\.", r"edge_blocks.\1.dist_block.fc1_edge_attr."),
    (r"^blocks\.(\d+)\.messages\.(\d+)\.edge_to_hidden\.",
     r"edge_blocks.\1.message_blocks.\2.fc1_dist."),
    (r"^blocks\.(\d+)\.messages\.(\d+)\.pair_to_hidden\.",
     r"edge_blocks.\1.message_blocks.\2.fc1_edge_proj."),
    (r"^blocks\.(\d+)\.messages\.(\d+)\.hidden\.", r"edge_blocks.\1.message_blocks.\2.fc1_edge."),
    (r"^blocks\.(\d+)\.messages\.(\d+)\.out\.", r"edge_blocks.\1.message_blocks.\2.fc2_edge."),
    (r"^blocks\.(\d+)\.aggregate\.fc(\d)\.", r"edge_blocks.\1.fc\2_sphere."),
    (r"^outputs\.energy\.fc(\d)\.", r"energy_fc\1."),
    (r"^outputs\.force\.fc(\d)\.", r"force_fc\1."),
]  # fmt: skip

ATTRS = dict(use_pbc=True, regress_forces=True, otf_graph=True, max_num_neighbors=20, cutoff=5.0,
             num_interactions=2, lmax=3, mmax=1, num_resolutions=1, sphere_channels=8,
             sphere_channels_reduce=8, hidden_channels=16, num_taps=-1, use_grid=True,
             num_bands=1, num_sphere_samples=64, num_basis_functions=16)  # fmt: skip


def _reference_state(model: SCN, num_basis: int) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        for pattern, repl in _TO_REFERENCE:
            new, hits = re.subn(pattern, repl, key)
            if hits:
                out["module." + new] = value
                break
        else:
            raise AssertionError(f"no reference name for {key}")
    out["module.distance_expansion.offset"] = torch.linspace(0, 5.0, num_basis)
    return out


def _write(tmp_path, attrs: dict):
    cfg = SCNConfig(num_layers=2, lmax=3, mmax=1, num_taps=4, sphere_channels=8,
                    hidden_channels=16, edge_channels=16, num_distance_basis=250, cutoff=5.0,
                    num_sphere_samples=64, energy_mean=-0.5, energy_std=2.0,
                    force_std=2.0)  # fmt: skip
    torch.manual_seed(0)
    model = SCN(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ckpt = {
        "state_dict": _reference_state(model, 250),
        "config": {"model": {"name": "scn", **attrs}},
        "normalizers": {"target": {"mean": torch.tensor(-0.5), "std": torch.tensor(2.0)},
                        "grad_target": {"mean": torch.tensor(0.0), "std": torch.tensor(2.0)}},
    }  # fmt: skip
    path = tmp_path / "scn.pt"
    torch.save(ckpt, path)
    return path, model.eval()


def test_synthetic_fairchem_scn_file_round_trips(tmp_path):
    path, model = _write(tmp_path, ATTRS)
    ckpt = load(path)
    assert ckpt.model_name == "scn" and ckpt.source == "fairchem"
    cfg = SCNConfig(**ckpt.model_config)
    assert (cfg.num_taps, cfg.num_distance_basis, cfg.edge_channels) == (4, 250, 16)
    assert (cfg.energy_mean, cfg.energy_std, cfg.force_std) == (-0.5, 2.0, 2.0)
    imported = ckpt.build()
    graph = AtomicGraph.from_atoms(cu_slab(), 5.0, 20)
    a, b = model(graph), imported(graph)
    assert torch.allclose(a["energy"], b["energy"]) and torch.allclose(a["forces"], b["forces"])


@pytest.mark.parametrize(
    ("change", "match"),
    [({"num_bands": 2}, "num_bands"), ({"use_grid": False}, "use_grid"),
     ({"direct_forces": False}, "direct_forces"), ({"sphere_channels_reduce": 4}, "reduce"),
     ({"mmax": 2}, "num_taps")],
)  # fmt: skip
def test_unsupported_attributes_are_refused(tmp_path, change, match):
    path, _ = _write(tmp_path, {**ATTRS, **change})
    with pytest.raises(FairchemImportError, match=match):
        load(path)
