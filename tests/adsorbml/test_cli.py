from __future__ import annotations

import json

import pytest
from ase.io import write

from equicat.cli.main import main
from equicat.data.oc_emt import build_slab


@pytest.mark.slow
def test_adsorbml_command_end_to_end(tmp_path):
    """The shipped checkpoint + EMT on a Cu(111) slab file, tiny settings; rerun is a no-op."""
    slab = tmp_path / "slab.extxyz"
    write(slab, build_slab("Cu", "111", 2, 3))
    out = tmp_path / "run"
    argv = [
        "adsorbml",
        "--slab",
        str(slab),
        "--adsorbate",
        "*OH",
        "--k",
        "2",
        "--random",
        "1",
        "--steps",
        "5",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "placements",
        "valid",
        "anomalies_by_rule",
        "top_k",
        "best_oracle_energy",
        "adsorption_energy",
        "chosen_structure",
    ):
        assert key in summary
    assert summary["placements"] == 5
    assert (out / "report.png").is_file()
    before = (out / "oracle_single_points.json").read_text()
    assert main(argv) == 0
    assert (out / "oracle_single_points.json").read_text() == before


def test_bad_adsorbate_name_is_an_error(tmp_path, capsys):
    slab = tmp_path / "slab.extxyz"
    write(slab, build_slab("Cu", "111", 2, 3))
    argv = ["adsorbml", "--slab", str(slab), "--adsorbate", "*XX", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "no OC20 adsorbate named '*XX'" in capsys.readouterr().err


def test_slab_from_bulk_option_and_adsorbate_file(tmp_path):
    import argparse

    from ase.build import molecule

    from equicat.cli.adsorbml import _adsorbate, _slab

    args = argparse.Namespace(
        slab=None, bulk="Cu", miller=[1, 0, 0], layers=4, size=[2, 2], adsorbate="*OH"
    )
    slab = _slab(args)
    assert len(slab) == 16 and set(slab.get_tags()) == {0, 1}
    mol = tmp_path / "nh3.xyz"
    write(mol, molecule("NH3"))
    args = argparse.Namespace(adsorbate=str(mol), binding=[0])
    assert _adsorbate(args).binding_indices == (0,)
    with pytest.raises(ValueError, match="--binding"):
        _adsorbate(argparse.Namespace(adsorbate=str(mol), binding=None))
