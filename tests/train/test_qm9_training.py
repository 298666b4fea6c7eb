"""Energy-only training on QM9 (``data.qm9``): config, no force gradients, evaluate, plots."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from equicat.cli.main import main
from equicat.data.dataset import write_frames
from equicat.models import build
from equicat.models.heads import energy_only
from equicat.train import TrainConfig, dump_config, load_config, sources, train
from equicat.train.config import DataConfig, QM9Source
from equicat.train.plots import learning_curve, read_log
from equicat.train.trainer import Trainer

GCN = {"degrees": [0, 1, 2], "hidden_channels": 4, "atom_embedding_dim": 8, "num_layers": 2,
       "num_bessel": 6, "radial_hidden": 8, "readout_hidden": 8, "cutoff": 4.0}  # fmt: skip
SOURCE = {"target": "U0", "train": 64, "val": 16, "seed": 0}


@pytest.fixture(scope="module", autouse=True)
def qm9_once():
    """Skips without qm9pack; otherwise reads the molecules of ``SOURCE`` once per module
    (each read scans qm9pack's CSV files, seconds on a busy machine)."""
    from equicat.data import qm9
    from equicat.train import sources

    try:
        qm9.data_dir()
    except ImportError:
        pytest.skip("qm9pack is not installed")
    cache = {}
    original = sources.qm9_frames

    def cached(source):
        if source not in cache:
            cache[source] = original(source)
        return cache[source]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources, "qm9_frames", cached)
        yield


def _config(out, **optim) -> TrainConfig:
    return TrainConfig.from_dict({
        "model": {"name": "gcn", "config": dict(GCN)},
        "data": {"qm9": dict(SOURCE), "batch_size": 16, "val_batch_size": 16},
        "optim": {"lr": 5e-3, "epochs": 2, "warmup_steps": 1, "ema_decay": None, **optim},
        "loss": {"force_coef": 10.0},  # ignored: QM9 has no force labels
        "seed": 0, "device": "cpu", "out_dir": str(out), "log_every": 1,
    })  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 8-step QM9 U0 run (64 training molecules) and its validation molecules."""
    root = tmp_path_factory.mktemp("qm9")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = _config(root / "run")
        best = train(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    _, val = sources.qm9_frames(QM9Source(**SOURCE))
    return config, best, write_frames(root / "val.extxyz", val), val


def test_qm9_source_round_trips_through_yaml_and_refuses_bad_values(tmp_path):
    config = _config(tmp_path / "run")
    assert config.data.qm9 == QM9Source("U0", 64, 16, 0)
    assert load_config(dump_config(config, tmp_path / "c.yaml")) == config
    with pytest.raises(ValueError, match="one of \\['U0', 'U', 'H', 'G'\\]"):
        QM9Source(target="gap")
    with pytest.raises(ValueError, match="1..110000 train"):
        QM9Source(train=0)
    with pytest.raises(ValueError, match="set one of them"):
        DataConfig(train=("a.extxyz",), qm9=QM9Source())
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['size'\\] in section 'data.qm9'"):
        DataConfig(qm9={"size": 3})


def test_energy_only_skips_forces_and_keeps_the_energy():
    _, val = sources.qm9_frames(QM9Source(**SOURCE))
    from equicat.data import AtomicGraph

    model = build("gcn", **GCN).double()
    graph = AtomicGraph.from_atoms(val[:4], 4.0, dtype=torch.float64)
    full = model(graph)
    with energy_only():
        only = model(graph)
    assert set(only) == {"energy"}
    assert torch.allclose(only["energy"], full["energy"].detach(), atol=1e-10)
    assert "forces" in model(graph)  # the switch ends with the block


def test_training_steps_need_no_force_gradient_and_lower_the_loss(tmp_path, monkeypatch):
    trainer = Trainer(_config(tmp_path / "run", lr=2e-2, epochs=20), progress=False)
    assert trainer.energy_only and trainer.train_set.samples[0].forces is None
    # U0 of 64 molecules: references soak up ~all of it; the scale is the per-atom spread
    assert 1e-3 < trainer.scale < 0.5

    def no_force_grad(*args, **kwargs):
        raise AssertionError("energy-only training took a gradient for forces")

    monkeypatch.setattr(torch.autograd, "grad", no_force_grad)
    batch = trainer._collate(trainer.train_set.samples[:16])
    losses = []
    for _ in range(8):  # the same batch: the loss must fall
        trainer.train_step(batch)
        losses.append(trainer._sums[0] - sum(losses))
    # slowly: the least-squares references leave residuals a tiny model cannot fit fast
    # (measured 1.107 -> 1.082)
    assert losses[-1] < 0.99 * losses[0]
    assert trainer._sums[2] == 0.0  # no force term


def test_qm9_run_logs_energy_only_and_evaluate_agrees(run, tmp_path, capsys):
    config, best, val_file, val = run
    with open(f"{config.out_dir}/log.csv") as fh:
        rows = list(csv.DictReader(fh))
    val_rows = [r for r in rows if r["val_energy_mae"]]
    assert len(rows) == 8 and len(val_rows) == 2
    assert all(r["val_force_mae"] == "" for r in rows)
    trainer_mae = min(float(r["val_energy_mae"]) for r in val_rows)
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["provenance"]["data"]["qm9"]["train"] == 64
    assert main(["evaluate", "--checkpoint", str(best), "--data", str(val_file), "--task",
                 "qm9", "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 0  # fmt: skip
    assert "U0 MAE" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["sets"]["val"]["U0"]
    assert metrics["mae"] == pytest.approx(trainer_mae, rel=1e-3, abs=2e-3)
    # U0 is ~ -1e4 eV: the fitted element references put the model within ~1 eV of it,
    # hundreds of times better than predicting the mean U0, and about as good as the
    # references alone (8 steps teach the network little beyond them)
    u0 = np.array([a.info["U0"] for a in val])
    refs = {int(z): e for z, e in ckpt["element_references"].items()}
    refs_only = np.abs([u - sum(refs[int(z)] for z in a.numbers)
                        for u, a in zip(u0, val, strict=True)])  # fmt: skip
    assert metrics["mae"] < np.abs(u0 - u0.mean()).mean() / 100
    assert metrics["mae"] < 1.5 * refs_only.mean()


def test_learning_curve_png_from_a_real_log(run, tmp_path):
    config, *_ = run
    png = tmp_path / "lc.png"
    assert learning_curve(config.out_dir, png) == png
    head = png.read_bytes()
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) > 10_000
    log = read_log(f"{config.out_dir}/log.csv")
    assert np.isfinite(log["val_energy_mae"]).sum() == 2 and np.isnan(log["val_force_mae"]).all()
    # the trainer wrote one at the end of the run; the CLI redraws it on demand
    written = f"{config.out_dir}/learning_curve.png"
    before = (tmp_path / "x").write_bytes(open(written, "rb").read())
    assert before > 10_000
    assert main(["train", "--plot", config.out_dir]) == 0
    assert open(written, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
