"""``equicat relax``: round trip through files, summary, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest

from equicat import checkpoints
from equicat.calculators import Predictor
from equicat.cli.main import main
from equicat.relax import relax

from .systems import model, near


@pytest.fixture
def setup(tmp_path, minimum):
    ckpt = checkpoints.save(model(), tmp_path / "m.pt")
    frames = [near(minimum, seed, rattle=0.1) for seed in range(3)]
    for atoms in frames:
        atoms.info.pop("adsorbate_info", None)  # a dict; extxyz cannot store it
    path = tmp_path / "in.extxyz"
    ase.io.write(path, frames)
    return ckpt, path, tmp_path / "out.extxyz"


def _args(ckpt, path, out, *extra):
    return [
        "relax", str(path), "--checkpoint", str(ckpt), "--out", str(out), "--dtype", "float64",
        "--device", "cpu", "--fmax", "0.005", "--steps", "40", "--batch-size", "2", "--quiet",
        *extra,
    ]  # fmt: skip


def test_round_trip(setup, capsys):
    ckpt, path, out = setup
    assert main(_args(ckpt, path, out)) == 0
    assert "3 relaxed, 0 skipped" in capsys.readouterr().out
    got = ase.io.read(out, ":")
    frames = ase.io.read(path, ":")
    pred = Predictor.from_checkpoint(ckpt, device="cpu", dtype="float64")
    expected = relax(frames, pred, fmax=0.005, steps=40, batch_size=2, progress=False)
    assert [a.info["source"] for a in got] == [f"{path}@{k}" for k in range(3)]
    for a, e in zip(got, expected, strict=True):
        assert a.info["converged"] == e.info["converged"] and a.info["steps"] == e.info["steps"]
        assert a.get_potential_energy() == pytest.approx(e.info["energy"], abs=1e-8)
        np.testing.assert_allclose(a.positions, e.positions, atol=1e-6)
        assert a.constraints[0].get_indices().tolist() == [0, 1, 2, 3]
    summary = json.loads(out.with_name("out.summary.json").read_text())
    assert summary["total"] == 3 and summary["skipped"] == 0 and summary["forward_calls"] > 0
    assert [r["steps"] for r in summary["structures"]] == [a.info["steps"] for a in got]
    assert summary["converged"] == sum(a.info["converged"] for a in got)


def test_resume_skips_finished(setup, capsys):
    ckpt, path, out = setup
    assert main(_args(ckpt, path, out)) == 0
    full = ase.io.read(out, ":")
    ase.io.write(out, [full[0], full[2]])  # as if interrupted before structure 1 was written
    capsys.readouterr()
    assert main(_args(ckpt, path, out)) == 0
    assert "1 relaxed, 2 skipped" in capsys.readouterr().out
    again = ase.io.read(out, ":")
    assert [a.info["source"] for a in again] == [a.info["source"] for a in full]
    for a, b in zip(again, full, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)
    summary = json.loads(out.with_name("out.summary.json").read_text())
    assert summary["relaxed_this_run"] == 1 and summary["skipped"] == 2
    assert main(_args(ckpt, path, out)) == 0  # nothing left to do
    assert "already in" in capsys.readouterr().out
    assert not list(out.parent.glob(".*partial*"))


def test_kill_9_mid_run_then_rerun_matches_an_uninterrupted_run(setup, tmp_path, capsys):
    """SIGKILL after the first batch reached OUT; the same command then relaxes only the rest
    and OUT equals an uninterrupted run's."""
    ckpt, path, out = setup
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-m", "tests.relax.crash_run", *_args(ckpt, path, out)],
                          cwd=root, env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    assert len(ase.io.read(out, ":")) == 2  # batch size 2: one batch written, one missing
    capsys.readouterr()
    assert main(_args(ckpt, path, out)) == 0
    assert "1 relaxed, 2 skipped" in capsys.readouterr().out
    clean = tmp_path / "clean.extxyz"
    assert main(_args(ckpt, path, clean)) == 0
    resumed, full = ase.io.read(out, ":"), ase.io.read(clean, ":")
    assert [a.info["source"] for a in resumed] == [a.info["source"] for a in full]
    for a, b in zip(resumed, full, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-10)
        assert a.info["steps"] == b.info["steps"]


def test_bad_input(setup, capsys):
    ckpt, _, out = setup
    assert main(_args(ckpt, out.with_name("missing.extxyz"), out)) == 2
    assert "does not exist" in capsys.readouterr().err


def test_output_directory_is_created(setup):
    ckpt, path, out = setup
    nested = out.parent / "new" / "dir" / "out.extxyz"  # as on a fresh checkout: no runs/
    assert main(_args(ckpt, path, nested)) == 0
    assert len(ase.io.read(nested, ":")) == 3
