"""``equicat is2rs``: relax, score, write metrics and plot; resumes like ``equicat relax``."""

from __future__ import annotations

import json

import ase.io
import pytest
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from equicat import checkpoints
from equicat.calculators import EquiCatCalculator
from equicat.cli.main import main
from equicat.relax.metrics import score

from .systems import model, near


@pytest.fixture
def setup(tmp_path, minimum, pred):
    ckpt = checkpoints.save(model(), tmp_path / "m.pt")
    initial = [near(minimum, seed, rattle=0.1) for seed in range(3)]
    reference = []
    for _ in initial:
        ref = minimum.copy()
        ref.calc = EquiCatCalculator(pred)
        energy = ref.get_potential_energy()
        ref.calc = SinglePointCalculator(ref, energy=energy)
        reference.append(ref)
    for atoms in initial + reference:
        atoms.info.pop("adsorbate_info", None)  # a dict; extxyz cannot store it
    ase.io.write(tmp_path / "initial.extxyz", initial)
    ase.io.write(tmp_path / "reference.extxyz", reference)
    return ckpt, tmp_path


def _args(ckpt, tmp, *extra):
    return [
        "is2rs", str(tmp / "initial.extxyz"), "--reference", str(tmp / "reference.extxyz"),
        "--checkpoint", str(ckpt), "--out", str(tmp / "out"), "--dtype", "float64",
        "--device", "cpu", "--fmax", "0.005", "--steps", "40", "--batch-size", "2", "--quiet",
        *extra,
    ]  # fmt: skip


def test_scores_what_it_relaxed(setup, capsys):
    ckpt, tmp = setup
    assert main(_args(ckpt, tmp, "--oracle", "emt")) == 0
    assert "ADwT=" in capsys.readouterr().out
    data = json.loads((tmp / "out" / "metrics.json").read_text())
    relaxed = ase.io.read(tmp / "out" / "relaxed.extxyz", ":")
    reference = ase.io.read(tmp / "reference.extxyz", ":")
    expected = score(
        relaxed, reference, [a.get_potential_energy() for a in relaxed],
        [a.get_potential_energy() for a in reference], EMT(),
    )  # fmt: skip
    for key in ("adwt", "energy_mae", "ewt", "fbt", "afbt"):
        assert data[key] == pytest.approx(getattr(expected, key), abs=1e-12), key
    assert data["count"] == 3 and data["total"] == 3 and len(data["dwt"]) == 490
    # relaxed from 0.1 Å rattles back to the model's minimum: close on the ADwT scale
    assert data["adwt"] > 0.8 and data["energy_mae"] < 0.05
    assert (tmp / "out" / "is2rs.png").stat().st_size > 1000
    # a rerun relaxes nothing and scores the same
    assert main(_args(ckpt, tmp, "--oracle", "emt")) == 0
    assert "already in" in capsys.readouterr().out
    again = json.loads((tmp / "out" / "metrics.json").read_text())
    assert again["adwt"] == data["adwt"] and again["afbt"] == data["afbt"]


def test_without_oracle_and_errors(setup, capsys):
    ckpt, tmp = setup
    assert main(_args(ckpt, tmp)) == 0
    data = json.loads((tmp / "out" / "metrics.json").read_text())
    assert data["afbt"] is None and data["adwt"] > 0
    ase.io.write(tmp / "reference.extxyz", ase.io.read(tmp / "reference.extxyz", ":2"))
    assert main(_args(ckpt, tmp)) == 2
    assert "holds 2 frames" in capsys.readouterr().err
