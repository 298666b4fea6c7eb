"""``equicat md``: files written, resumption equal to an uninterrupted run."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

from equicat import checkpoints
from equicat.cli.main import main
from equicat.md.hdf5 import read_trajectory

from .systems import emt_slab, model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("md_cli")
    ckpt = checkpoints.save(model(), tmp / "m.pt")
    path = tmp / "in.extxyz"
    ase.io.write(path, [emt_slab(0), emt_slab(1)])
    return ckpt, path, tmp


def _args(ckpt, path, out, steps, *extra):
    return [
        "md", str(path), "--checkpoint", str(ckpt), "--out", str(out), "--dtype", "float64",
        "--device", "cpu", "--ensemble", "nve", "--temperature", "600", "--timestep", "1.0",
        "--steps", str(steps), "--log-interval", "2", "--quiet", *extra,
    ]  # fmt: skip


def test_resume_equals_uninterrupted(setup, capsys):
    ckpt, path, tmp = setup
    whole, split = tmp / "whole.h5", tmp / "split.h5"
    assert main(_args(ckpt, path, whole, 8, "--extxyz", str(tmp / "whole.extxyz"))) == 0
    assert main(_args(ckpt, path, split, 4)) == 0
    assert main(_args(ckpt, path, split, 8)) == 0  # continues from step 4
    out = capsys.readouterr().out
    assert "E_tot drift" in out
    a, b = read_trajectory(whole), read_trajectory(split)
    np.testing.assert_array_equal(a["step"], [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(a["step"], b["step"])
    np.testing.assert_allclose(b["positions"], a["positions"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(b["velocities"], a["velocities"], rtol=0, atol=1e-10)
    log_a = (tmp / "whole.log.csv").read_text().splitlines()
    log_b = (tmp / "split.log.csv").read_text().splitlines()
    assert len(log_a) == len(log_b) == 1 + 5 * 2  # header + 5 logged steps x 2 systems
    summary = json.loads((tmp / "split.summary.json").read_text())
    assert summary["resumed_from_step"] == 4 and summary["frames"] == 5
    assert len(summary["systems"]) == 2
    frames = ase.io.read(tmp / "whole.extxyz", ":")
    assert len(frames) == 10 and frames[-1].info["step"] == 8


def test_resume_refuses_other_settings(setup, capsys):
    ckpt, path, tmp = setup
    out = tmp / "other.h5"
    assert main(_args(ckpt, path, out, 2)) == 0
    assert main([*_args(ckpt, path, out, 4)[:-1], "--seed", "3", "--quiet"]) == 2
    assert "seed" in capsys.readouterr().err
