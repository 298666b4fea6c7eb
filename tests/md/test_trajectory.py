"""HDF5 trajectories: contents, reading while running, crash recovery and exact resumption."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase.calculators.emt import EMT

from equicat.calculators.potential import AsePotential
from equicat.md import step
from equicat.md.hdf5 import H5Writer, read_frame, read_trajectory, recover
from equicat.md.report import CsvLog, drift_per_atom_per_ps, drift_report, write_extxyz
from equicat.md.runner import init_from_atoms, restore, run_md

from .crash_run import CONFIG
from .systems import emt_slab

ROOT = Path(__file__).resolve().parents[2]


def _uninterrupted(path: Path, steps: int):
    pot = AsePotential(EMT())
    state = init_from_atoms([emt_slab(0), emt_slab(1, fixed=False)], pot, CONFIG)
    writer = H5Writer.create(path, state, {"test": True})
    writer.append(state)
    state = run_md(state, pot, steps, writer=writer, traj_interval=5, flush_interval=10,
                   progress=False)  # fmt: skip
    writer.close()
    return state


def test_contents_and_reading_while_open(tmp_path):
    pot = AsePotential(EMT())
    state = init_from_atoms([emt_slab(0)], pot, CONFIG)
    path = tmp_path / "t.h5"
    writer = H5Writer.create(path, state, {"note": "x"})
    writer.append(state)
    log = CsvLog.open(tmp_path / "t.csv")
    state = run_md(state, pot, 12, writer=writer, log=log, traj_interval=4, log_interval=3,
                   flush_interval=4, progress=False)  # fmt: skip
    # a reader sees the flushed frames while the writer still holds the file
    with h5py.File(path, "r", swmr=True) as f:
        assert list(f["step"][:]) == [0, 4, 8, 12]
    writer.close()
    log.close()
    traj = read_trajectory(path)
    np.testing.assert_array_equal(traj["positions"][-1], state.graph.positions.numpy())
    np.testing.assert_allclose(traj["velocities"][-1], state.velocities.numpy(), rtol=1e-15)
    np.testing.assert_array_equal(traj["time"], [0.0, 8.0, 16.0, 24.0])
    assert traj["metadata"] == {"note": "x"} and traj["config"]["ensemble"] == "nvt-langevin"
    assert traj["fixed"][:4].all() and not traj["fixed"][4:].any()
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [3, 6, 9, 12]
    n = write_extxyz(path, tmp_path / "t.extxyz")
    import ase.io

    frames = ase.io.read(tmp_path / "t.extxyz", ":")
    assert n == len(frames) == 4
    np.testing.assert_allclose(frames[-1].positions, traj["positions"][-1], atol=1e-8)
    np.testing.assert_allclose(frames[-1].get_forces(), traj["forces"][-1], atol=1e-8)


def _resume_and_compare(path: Path, tmp_path: Path) -> None:
    """Recover ``path`` (killed after step 27), finish it to step 40, compare with a whole run."""
    n = recover(path)
    assert 5 <= n <= 6  # frames 0..20 were flushed; 25 may have reached the disk
    pot = AsePotential(EMT())
    last = read_frame(path)
    state = restore(last, pot, CONFIG)
    assert state.step == 5 * (n - 1)
    writer = H5Writer.append_to(path)
    run_md(state, pot, 40, writer=writer, traj_interval=5, flush_interval=10, progress=False)
    writer.close()
    _uninterrupted(tmp_path / "whole.h5", 40)
    got, want = read_trajectory(path), read_trajectory(tmp_path / "whole.h5")
    np.testing.assert_array_equal(got["step"], want["step"])
    np.testing.assert_allclose(got["positions"], want["positions"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got["velocities"], want["velocities"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(got["energy"], want["energy"], rtol=0, atol=1e-9)


def test_crash_snapshot_then_resume_matches_uninterrupted(tmp_path):
    """The file as a crash leaves it (copied while the writer holds it open) resumes exactly.

    Langevin, so the restored generator state matters: without it the noise would differ.
    """
    pot = AsePotential(EMT())
    state = init_from_atoms([emt_slab(0), emt_slab(1, fixed=False)], pot, CONFIG)
    live = tmp_path / "live.h5"
    writer = H5Writer.create(live, state, {"test": True})
    writer.append(state)
    for n in range(1, 28):
        state = step(state, pot)
        if n % 5 == 0:
            writer.append(state)
        if n % 10 == 0:
            writer.flush()
    crashed = tmp_path / "crashed.h5"
    shutil.copyfile(live, crashed)  # the bytes on disk at the "crash"
    writer.close()
    with pytest.raises(OSError):  # the writer's open flag is set: HDF5 refuses to append
        h5py.File(crashed, "a")
    _resume_and_compare(crashed, tmp_path)


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    """A Langevin run SIGKILLed at step 27 resumes from its last flushed frame (RNG included)."""
    path = tmp_path / "crashed.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.md.crash_run", str(path), "27"],
                          cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    _resume_and_compare(path, tmp_path)


def test_recover_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["a"] = 1
    try:
        recover(path)
    except ValueError as err:
        assert "not an equicat MD trajectory" in str(err)
    else:
        raise AssertionError("recover accepted a foreign file")


def test_drift_fit():
    t = np.arange(0.0, 1001.0, 10.0)  # fs
    e = np.stack([5.0 + 2e-3 * t / 1000.0 * 10, 1.0 + 0 * t], axis=1)  # [T, 2] eV, 10 atoms
    drift = drift_per_atom_per_ps(t, e, np.array([10.0, 4.0]))
    np.testing.assert_allclose(drift, [2e-3, 0.0], atol=1e-12)


def test_drift_report_of_nve_emt(tmp_path):
    """NVE with EMT at 1 fs: a tiny drift (a real measurement, small because EMT is smooth)."""
    pot = AsePotential(EMT())
    cfg = CONFIG.__class__(ensemble="nve", timestep=1.0, temperature=300.0)
    state = init_from_atoms([emt_slab(0)], pot, cfg)
    writer = H5Writer.create(tmp_path / "n.h5", state, {})
    writer.append(state)
    run_md(state, pot, 100, writer=writer, traj_interval=5, progress=False)
    writer.close()
    report = drift_report(tmp_path / "n.h5")
    assert report["frames"] == 21 and abs(report["time_ps"] - 0.1) < 1e-12
    assert abs(report["systems"][0]["etot_drift_eV_per_atom_per_ps"]) < 1e-3
