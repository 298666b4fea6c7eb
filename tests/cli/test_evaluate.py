from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from equicat.calculators import Predictor
from equicat.cli.main import main
from equicat.data.dataset import frame_labels, write_frames
from equicat.data.oc_emt import generate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frames():
    return generate(2, seed=21, relax_steps=8, keep_every=4, rattle_frames=1)


@pytest.fixture(scope="module")
def data_file(frames, tmp_path_factory):
    return str(write_frames(tmp_path_factory.mktemp("eval") / "val.extxyz", frames))


def test_evaluate_s2ef_matches_the_predictor_and_writes_a_plot(frames, data_file, tmp_path):
    out = tmp_path / "ev"
    args = ["evaluate", "--data", data_file, "--task", "s2ef", "--out", str(out)]
    assert main(args + ["--device", "cpu"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    m = report["sets"]["val"]
    preds = Predictor.from_checkpoint("oc-emt-eqv2-s", device="cpu").predict(frames)
    de = [abs(p["energy"] - frame_labels(a)[0]) for p, a in zip(preds, frames, strict=True)]
    assert m["energy_mae"] == pytest.approx(np.mean(de), rel=1e-5)
    free = np.concatenate([~np.isin(np.arange(len(a)), a.constraints[0].index) for a in frames])
    pairs = zip(preds, frames, strict=True)
    df = np.concatenate([p["forces"] - frame_labels(a)[1] for p, a in pairs])
    assert m["force_mae"] == pytest.approx(np.abs(df[free]).mean(), rel=1e-5)
    assert m["scored_atoms"] == free.sum() < len(free)
    assert -1 <= m["force_cosine"] <= 1 and 0 <= m["energy_forces_within_threshold"] <= 1
    assert (out / "parity_val.png").read_bytes()[:8] == PNG_MAGIC
    assert main(args + ["--device", "cpu", "--all-atoms", "--no-plot"]) == 0
    every = json.loads((out / "metrics.json").read_text())["sets"]["val"]
    assert every["scored_atoms"] == len(free) and every["energy_mae"] == m["energy_mae"]
    # a data directory stands for its val*.extxyz files
    assert main(["evaluate", "--data", str(Path(data_file).parent), "--out", str(out),
                 "--device", "cpu", "--no-plot"]) == 0  # fmt: skip
    assert set(json.loads((out / "metrics.json").read_text())["sets"]) == {"val"}


def test_evaluate_is2re_relaxes_each_system(frames, data_file, tmp_path):
    out = tmp_path / "ev"
    args = ["evaluate", "--data", data_file, "--task", "is2re", "--out", str(out)]
    args += ["--device", "cpu"]
    # no relaxation steps: the prediction is the model's energy on each earliest frame
    assert main(args + ["--steps", "0", "--no-plot"]) == 0
    m0 = json.loads((out / "metrics.json").read_text())["sets"]["val"]
    first, last = {}, {}
    for f in frames:
        if f.info["frame_kind"] == "relax":
            first.setdefault(f.info["system_id"], f)  # frames come in step order
            last[f.info["system_id"]] = frame_labels(f)[0]
    preds = Predictor.from_checkpoint("oc-emt-eqv2-s", device="cpu").predict(list(first.values()))
    expected = np.mean([abs(p["energy"] - last[i]) for p, i in zip(preds, first, strict=True)])
    assert m0["structures"] == 2
    assert m0["energy_mae"] == pytest.approx(expected, rel=1e-5)
    assert main(args + ["--steps", "20"]) == 0
    m = json.loads((out / "metrics.json").read_text())["sets"]["val"]
    assert m["relax_mean_steps"] > 0 and m["energy_mae"] != m0["energy_mae"]
    assert (out / "parity_val.png").read_bytes()[:8] == PNG_MAGIC


def test_evaluate_refuses_bad_input(tmp_path, capsys):
    args = ["evaluate", "--data", str(tmp_path / "nope.extxyz"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_qm9_task_scores_the_target(frames, tmp_path):
    molecules = [f.copy() for f in frames[:3]]
    for i, atoms in enumerate(molecules):
        atoms.info["U0"] = frame_labels(frames[i])[0]
    path = write_frames(tmp_path / "qm9.extxyz", molecules)
    out = tmp_path / "o"
    assert main(["evaluate", "--data", str(path), "--task", "qm9", "--out", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())["sets"]["qm9"]
    preds = Predictor.from_checkpoint("oc-emt-eqv2-s", device="cpu").predict(molecules)
    expected = np.mean([abs(p["energy"] - a.info["U0"]) for p, a in zip(preds, molecules,
                                                                        strict=True)])  # fmt: skip
    assert m["U0"]["mae"] == pytest.approx(expected, rel=1e-5)
