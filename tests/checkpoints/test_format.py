from __future__ import annotations

import re

import pytest
import torch

from equicat import checkpoints
from equicat.checkpoints import CheckpointError, FairchemImportError
from equicat.checkpoints.fairchem import _ATTN, _FFN, _NORM
from equicat.data import AtomicGraph

from ..helpers import cu_slab, tiny_model

_model = tiny_model
_slab = cu_slab


def _predict(model, atoms):
    g = AtomicGraph.from_atoms(atoms, model.cutoff, model.max_neighbors, dtype=torch.float64)
    with torch.no_grad():
        return model.double()(g)


def test_round_trip_same_predictions(tmp_path):
    m = _model()
    path = checkpoints.save(m, tmp_path / "m.pt", data="unit-test", steps=3, metrics={"mae": 1.0})
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["format"] == checkpoints.FORMAT and raw["provenance"]["data"] == "unit-test"
    assert raw["metrics"] == {"mae": 1.0}
    m2 = checkpoints.load_model(path)
    a, b = _predict(m, _slab()), _predict(m2, _slab())
    assert torch.equal(a["energy"], b["energy"]) and torch.equal(a["forces"], b["forces"])


def test_ema_weights_preferred(tmp_path):
    m = _model()
    ema = {k: v + 1.0 if v.is_floating_point() else v for k, v in m.state_dict().items()}
    path = checkpoints.save(m, tmp_path / "m.pt", ema_state_dict=ema)
    loaded = checkpoints.load(path)
    key = "atom_embedding.weight"
    assert torch.equal(loaded.state_dict[key], ema[key])
    raw_weights = checkpoints.load(path, use_ema=False).state_dict[key]
    assert torch.equal(raw_weights, m.state_dict()[key])


def test_atomic_write_leaves_no_temporary(tmp_path):
    checkpoints.save(_model(), tmp_path / "sub" / "m.pt")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.pt"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.load(tmp_path / "nope.pt")


def test_corrupt_file(tmp_path):
    path = checkpoints.save(_model(), tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        checkpoints.load(path)


def test_foreign_file(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="neither an equicat checkpoint"):
        checkpoints.load(path)


def test_pickled_module_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        checkpoints.load(path)


def test_newer_format_version(tmp_path):
    path = checkpoints.save(_model(), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="format version 99"):
        checkpoints.load(path)


# ---- fairchem-1.x layout, built from our own weights by inverting the name mapping ----

_INVERSE_TOP = [
    (r"atom_embedding\.", "sphere_embedding."),
    (r"edge_degree\.radial\.", "edge_degree_embedding.rad_func."),
    (r"edge_degree\.edge\.", "edge_degree_embedding."),
    (r"blocks\.(\d+)\.norm_attn\.", r"blocks.\1.norm_1."),
    (r"blocks\.(\d+)\.norm_ffn\.", r"blocks.\1.norm_2."),
    (r"blocks\.(\d+)\.attn\.", r"blocks.\1.ga."),
    (r"blocks\.(\d+)\.ffn\.", r"blocks.\1.ffn."),
    (r"norm\.", "norm."),
    (r"energy_head\.ffn\.", "energy_block."),
    (r"force_head\.attention\.", "force_block."),
]
_INVERSE_INNER = [
    (r"edge\.(source|target)_embedding\.", r"\1_embedding."),
    (r"radial\.", "so2_conv_1.rad_func."),
    (r"conv(\d)\.fc_m0\.", r"so2_conv_\1.fc_m0."),
    (r"conv(\d)\.fc_m\.(\d+)\.", r"so2_conv_\1.so2_m_conv.\2.fc."),
    (r"linear_(\d)\.", r"so3_linear_\1."),
    (r"grid_mlp\.mlp\.(\d)\.", r"grid_mlp.\1."),
]
assert _ATTN and _FFN and _NORM  # the forward mapping exists


def _to_fairchem_names(state):
    out = {}
    for key, value in state.items():
        for pat, rep in _INVERSE_TOP:
            m = re.match(pat, key)
            if m:
                head, rest = m.expand(rep), key[m.end() :]
                for ip, ir in _INVERSE_INNER:
                    if re.match(ip, rest):
                        rest = re.sub(ip, ir, rest, count=1)
                        break
                out["module." + head + rest] = value
                break
        else:
            raise AssertionError(key)
    # buffers the reference stores and equicat must ignore
    out["module.SO3_grid.0.0.to_grid_mat"] = torch.zeros(18, 18, 1)
    out["module.blocks.0.norm_1.balance_degree_weight"] = torch.zeros(8, 1)
    out["module.blocks.0.ga.proj.expand_index"] = torch.zeros(9, dtype=torch.long)
    return out


def _fairchem_attrs():
    return dict(
        num_layers=1,
        lmax_list=[2],
        mmax_list=[1],
        sphere_channels=8,
        attn_hidden_channels=8,
        num_heads=2,
        attn_alpha_channels=4,
        attn_value_channels=2,
        ffn_hidden_channels=8,
        edge_channels=8,
        max_radius=4.0,
        max_neighbors=20,
        norm_type="layer_norm_sh",
        use_grid_mlp=True,
        regress_forces=True,
    )


@pytest.mark.parametrize("layout", ["nested", "legacy"])
def test_fairchem_import_both_layouts(tmp_path, layout):
    m = _model()
    attrs = _fairchem_attrs()
    config = (
        {"model": {"name": "equiformer_v2", **attrs}}
        if layout == "nested"
        else {"model": "equiformer_v2", "model_attributes": attrs}
    )
    mean, std = -0.5, 2.0
    path = tmp_path / "fc.pt"
    torch.save(
        {
            "state_dict": _to_fairchem_names(m.state_dict()),
            "config": config,
            "normalizers": {
                "target": {"mean": torch.tensor(mean), "std": torch.tensor(std)},
                "grad_target": {"mean": torch.tensor(0.0), "std": torch.tensor(std)},
            },
        },
        path,
    )
    ck = checkpoints.load(path)
    assert ck.source == "fairchem"
    imported = ck.build()
    a, b = _predict(m, _slab()), _predict(imported, _slab())
    assert torch.allclose(b["energy"], a["energy"] * std + mean, atol=1e-10)
    assert torch.allclose(b["forces"], a["forces"] * std, atol=1e-10)


def test_fairchem_ema_shadow_params(tmp_path):
    m = _model()
    state = _to_fairchem_names(m.state_dict())
    shadow = [p.detach() + 0.5 for p in m.parameters()]
    path = tmp_path / "fc.pt"
    torch.save(
        {
            "state_dict": state,
            "config": {"model": {"name": "equiformer_v2", **_fairchem_attrs()}},
            "ema_state_dict": {"shadow_params": shadow, "decay": 0.999},
        },
        path,
    )
    ema_model = checkpoints.load_model(path)
    assert torch.equal(ema_model.atom_embedding.weight, m.atom_embedding.weight + 0.5)
    raw = checkpoints.load_model(path, use_ema=False)
    assert torch.equal(raw.atom_embedding.weight, m.atom_embedding.weight)


def test_fairchem_unsupported_variant(tmp_path):
    attrs = {**_fairchem_attrs(), "use_gate_act": True}
    path = tmp_path / "fc.pt"
    torch.save({"state_dict": {}, "config": {"model": {"name": "equiformer_v2", **attrs}}}, path)
    with pytest.raises(FairchemImportError, match="use_gate_act"):
        checkpoints.load(path)


def test_fairchem_other_model_refused(tmp_path):
    path = tmp_path / "fc.pt"
    torch.save({"state_dict": {}, "config": {"model": {"name": "gemnet_oc"}}}, path)
    with pytest.raises(FairchemImportError, match="gemnet_oc"):
        checkpoints.load(path)


def test_non_plain_metadata_refused(tmp_path):
    with pytest.raises(TypeError, match="plain data only"):
        checkpoints.save(_model(), tmp_path / "m.pt", data=tmp_path)  # a Path object
    assert not (tmp_path / "m.pt").exists()
