from __future__ import annotations

import json

import ase.io
import pytest
import torch
from ase.build import bulk

from equicat import checkpoints
from equicat.calculators import Predictor
from equicat.cli.main import main
from equicat.models import build


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    m = build(
        "equiformer_v2",
        lmax=1,
        mmax=1,
        num_layers=1,
        sphere_channels=8,
        attn_hidden_channels=8,
        attn_alpha_channels=4,
        attn_value_channels=2,
        ffn_hidden_channels=8,
        edge_channels=8,
        cutoff=4.0,
    )
    return checkpoints.save(m, tmp_path / "m.pt")


@pytest.fixture
def structures(tmp_path):
    frames = [bulk("Cu", "fcc", a=3.6), bulk("Au", "fcc", a=4.1, cubic=True)]
    frames[1].rattle(0.05, seed=0)
    path = tmp_path / "s.extxyz"
    ase.io.write(path, frames)
    return path, frames


def test_json_output_matches_predictor(ckpt, structures, capsys):
    path, frames = structures
    assert main(["predict", str(path), "--checkpoint", str(ckpt), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = Predictor.from_checkpoint(ckpt, device="cpu").predict(frames)
    assert [r["natoms"] for r in rows] == [1, 4]
    for row, exp in zip(rows, expected, strict=True):
        assert row["energy"] == pytest.approx(exp["energy"], rel=1e-6)
        assert row["max_force"] == pytest.approx(
            float((exp["forces"] ** 2).sum(1).max() ** 0.5), rel=1e-5, abs=1e-7
        )


def test_table_output(ckpt, structures, capsys):
    path, _ = structures
    assert main(["predict", str(path), "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "energy/eV" in out[0] and len(out) == 3 and "Au4" in out[2]


def test_missing_structure_file(ckpt, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.xyz"), "--checkpoint", str(ckpt)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_corrupt_checkpoint(structures, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["predict", str(structures[0]), "--checkpoint", str(bad)]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err
