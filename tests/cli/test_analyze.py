"""``equicat analyze irreps``: statistics, PCA and plots from a GCN checkpoint."""

import json

import ase.io
import numpy as np
import pytest
import torch
from ase.build import molecule

from equicat.checkpoints import save
from equicat.cli.analyze import irreps_statistics, pca_2d
from equicat.cli.main import main
from equicat.models import build


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analyze")
    torch.manual_seed(0)
    small = dict(hidden_channels=3, atom_embedding_dim=4, num_layers=1, num_bessel=4,
                 radial_hidden=4, readout_hidden=4, cutoff=3.0)  # fmt: skip
    gcn = build("gcn", degrees=[0, 3, 4], **small)
    frames = []
    for k, name in enumerate(["H2O", "CH4", "NH3", "CH3OH", "C2H6", "CO2", "HCOOH"]):
        atoms = molecule(name)
        atoms.rattle(0.05, seed=k)
        atoms.info["gap"] = 0.5 * k
        frames.append(atoms)
    ase.io.write(tmp / "mols.extxyz", frames)
    eqv2 = build("equiformer_v2", lmax=1, mmax=1, num_layers=1, sphere_channels=4,
                 attn_hidden_channels=4, attn_alpha_channels=2, attn_value_channels=2,
                 ffn_hidden_channels=4, edge_channels=4)  # fmt: skip
    return {"gcn": save(gcn, tmp / "gcn.pt"), "eqv2": save(eqv2, tmp / "eqv2.pt"),
            "data": tmp / "mols.extxyz", "tmp": tmp}  # fmt: skip


def test_writes_statistics_and_plots(files, capsys):
    out = files["tmp"] / "out"
    code = main(
        [
            "analyze",
            "irreps",
            "--checkpoint",
            str(files["gcn"]),
            "--data",
            str(files["data"]),
            "--property",
            "gap",
            "--out",
            str(out),
            "--batch-size",
            "3",
        ]
    )
    assert code == 0
    stats = json.loads((out / "irreps_stats.json").read_text())
    assert sorted(stats["degrees"]) == ["0", "3", "4"]
    assert stats["structures"] == 7
    assert abs(sum(d["share"] for d in stats["degrees"].values()) - 1.0) < 1e-6
    assert stats["degrees"]["4"]["components"] == 3 * 9
    pca = json.loads((out / "irreps_pca.json").read_text())
    assert sorted(pca["pca"]) == ["all", "l=0", "l=3", "l=4"]
    assert np.asarray(pca["pca"]["l=3"]["projection"]).shape == (7, 2)
    assert pca["values"] == [0.5 * k for k in range(7)]
    for name in ("irreps_stats.png", "irreps_pca.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "l=3: mean norm" in capsys.readouterr().out


def test_missing_property_names_the_structure(files, capsys):
    code = main(
        [
            "analyze",
            "irreps",
            "--checkpoint",
            str(files["gcn"]),
            "--data",
            str(files["data"]),
            "--property",
            "U0",
            "--out",
            str(files["tmp"] / "x"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "structure 0" in err and "'U0'" in err and "gap" in err


def test_model_without_embeddings_is_refused(files, capsys):
    code = main(
        [
            "analyze",
            "irreps",
            "--checkpoint",
            str(files["eqv2"]),
            "--data",
            str(files["data"]),
            "--property",
            "gap",
            "--out",
            str(files["tmp"] / "y"),
        ]
    )
    assert code == 2
    assert "gcn" in capsys.readouterr().err


def test_statistics_and_pca_on_known_inputs():
    rng = np.random.default_rng(0)
    blocks = {0: np.ones((4, 2, 1)), 1: np.zeros((4, 2, 3))}
    blocks[1][:, 0, 0] = 2.0  # |x_1| = 2 on each atom, |x_0| = sqrt 2
    stats = irreps_statistics(blocks)
    assert stats["0"]["share"] == pytest.approx(2 / 6) and stats["1"]["share"] == pytest.approx(
        4 / 6
    )
    assert stats["1"]["mean_norm"] == pytest.approx(2.0) and stats["0"]["variance"] == 0.0
    # points on a line: all variance in the first component
    t = rng.normal(size=20)
    proj, ratio = pca_2d(np.stack([t, 2 * t, -t], axis=1))
    assert ratio[0] == pytest.approx(1.0) and ratio[1] < 1e-12
    assert np.abs(np.abs(proj[:, 0]) - np.abs(t - t.mean()) * np.sqrt(6)).max() < 1e-9
