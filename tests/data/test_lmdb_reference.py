"""Our LMDB reader and writer against fairchem-1.x and real torch_geometric ``Data`` pickles.

fairchem's ``AtomsToGraphs`` writes an OC20-style LMDB that we read with the restricted
unpickler, and fairchem's ``LmdbDataset`` reads the LMDB that ``write_lmdb`` writes. Runs the
reference venv (see shared/tools/fairchem_reference/README.md) through ``reference_lmdb.py``;
skipped where it is absent.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import ase.io
import numpy as np
import pytest

from equicat.data import formats
from equicat.data.formats.lmdb import write_lmdb

from .labelled import fixed, labelled_frames

pytestmark = [pytest.mark.reference, pytest.mark.slow]
pytest.importorskip("lmdb")

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("EQUICAT_REF_VENV", Path.home() / ".cache/equicat-fairchem-ref"))
TOOLS = Path(os.environ.get("EQUICAT_REF_TOOLS", REPO.parent / "shared/tools/fairchem_reference"))
PYTHON = VENV / "bin/python"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if not PYTHON.exists() or not (TOOLS / "shim").is_dir():
        pytest.skip(f"fairchem reference venv not found ({PYTHON}, {TOOLS}); see its README")
    tmp = tmp_path_factory.mktemp("lmdb_ref")
    frames = labelled_frames()
    ase.io.write(tmp / "in.extxyz", frames)
    frames = ase.io.read(tmp / "in.extxyz", ":")  # what fairchem sees, to the same digits
    write_lmdb(tmp / "ours.lmdb", frames)
    script = Path(__file__).with_name("reference_lmdb.py")
    subprocess.run(
        [str(PYTHON), str(script), str(tmp / "in.extxyz"), str(tmp / "ours.lmdb"), str(tmp)],
        check=True, env={**os.environ, "PYTHONPATH": str(TOOLS / "shim")},
        capture_output=True, timeout=600,
    )  # fmt: skip
    return frames, tmp


def f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def test_we_read_fairchem_written_pyg_data(reference):
    frames, tmp = reference
    got = formats.read_frames(tmp / "ref.lmdb")
    assert len(got) == len(frames)
    for i, (g, w) in enumerate(zip(got, frames, strict=True)):
        wrapped = w.copy()  # AtomsToGraphs wraps positions into the cell
        wrapped.wrap()
        np.testing.assert_array_equal(g.positions, f32(wrapped.positions))
        np.testing.assert_array_equal(g.cell.array, f32(w.cell.array))
        assert g.numbers.tolist() == w.numbers.tolist()
        assert g.calc.results["energy"] == pytest.approx(w.calc.results["energy"], abs=1e-6)
        np.testing.assert_array_equal(g.calc.results["forces"], f32(w.calc.results["forces"]))
        assert g.get_tags().tolist() == w.get_tags().tolist()
        assert fixed(g).tolist() == fixed(w).tolist()
        assert g.info.get("system_id", -1) == w.info.get("system_id", -1)
        assert g.info["fid"] == i


def test_fairchem_reads_what_we_write(reference):
    frames, tmp = reference
    read = np.load(tmp / "read.npz")
    assert int(read["n"]) == len(frames)
    for i, w in enumerate(frames):
        np.testing.assert_array_equal(read[f"{i}/pos"], f32(w.positions))
        np.testing.assert_array_equal(read[f"{i}/cell"][0], f32(w.cell.array))
        assert read[f"{i}/atomic_numbers"].tolist() == w.numbers.tolist()
        assert float(read[f"{i}/y"]) == w.calc.results["energy"]
        np.testing.assert_array_equal(read[f"{i}/force"], f32(w.calc.results["forces"]))
        assert read[f"{i}/tags"].tolist() == w.get_tags().tolist()
        assert (read[f"{i}/fixed"] > 0.5).tolist() == fixed(w).tolist()
        assert int(read[f"{i}/natoms"]) == len(w)
        if "system_id" in w.info:
            assert int(read[f"{i}/sid"]) == w.info["system_id"]
        else:
            assert f"{i}/sid" not in read
