from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from equicat.calculators import Predictor
from equicat.checkpoints import load, load_model
from equicat.cli.main import main
from equicat.data.dataset import StructureDataset, collate
from equicat.train import dump_config, train
from equicat.train.state import load_state
from equicat.train.trainer import Trainer


def with_optim(config, **changes):
    return dataclasses.replace(config, optim=dataclasses.replace(config.optim, **changes))


def log_rows(run_dir) -> list[dict]:
    with (run_dir / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_tiny_run_lowers_the_loss_and_writes_loadable_checkpoints(tiny_config, tiny_data):
    config = with_optim(tiny_config, epochs=8)
    best = train(config, progress=False)
    out = best.parent
    rows = log_rows(out)
    assert [int(r["step"]) for r in rows] == [5 * k for k in range(1, 9)]  # 18 frames / 4
    first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
    assert last < 0.85 * first, (first, last)
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    for name in ("best.pt", "last.pt"):
        ckpt = load(out / name)
        assert ckpt.metadata["provenance"]["steps"] in {5 * k for k in range(1, 9)}
        assert ckpt.metadata["provenance"]["config"] == config.to_dict()
        assert set(ckpt.metadata["element_references"]) == {"1", "6", "8", "46", "78", "79"}
        assert ckpt.metadata["normalization"]["scale"] > 0
        load_model(out / name)
    last = load(out / "last.pt")
    assert last.metadata["metrics"]["val_loss"] == pytest.approx(float(rows[-1]["val_loss"]))
    best_loss = min(float(r["val_loss"]) for r in rows)
    assert load(best).metadata["metrics"]["val_loss"] == pytest.approx(best_loss)
    # the checkpoint alone predicts totals on the oracle's scale: the calculator path
    # reproduces the trainer's validation error without any external reference energies
    val = StructureDataset.from_files(tiny_data[1])
    pred = Predictor.from_checkpoint(out / "last.pt", device="cpu").predict(
        [s.atoms for s in val.samples]
    )
    err = np.mean(
        [abs(p["energy"] - s.energy) / len(s.atoms) for p, s in zip(pred, val, strict=True)]
    )
    assert err == pytest.approx(last.metadata["metrics"]["val_energy_mae_per_atom"], rel=1e-4)
    per_atom = np.mean([abs(s.energy) / len(s.atoms) for s in val.samples])
    assert err < 0.25 * per_atom  # far better than ignoring the element references


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tiny_config, tmp_path):
    config = with_optim(tiny_config, max_steps=4, epochs=2)  # 5 steps/epoch: stop mid-epoch
    straight = dataclasses.replace(config, out_dir=str(tmp_path / "straight"))
    train(straight, progress=False)
    broken = dataclasses.replace(config, out_dir=str(tmp_path / "broken"))
    train(broken, stop_at_step=2, progress=False)
    assert load_state(tmp_path / "broken" / "train_state.pt")["step"] == 2
    assert load(tmp_path / "broken" / "last.pt").metadata["provenance"]["steps"] == 2
    train(broken, progress=False)  # a new process would do the same: state from disk
    a = load(tmp_path / "straight" / "last.pt", use_ema=False)
    b = load(tmp_path / "broken" / "last.pt", use_ema=False)
    assert a.metadata["provenance"]["steps"] == b.metadata["provenance"]["steps"] == 4
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value, atol=1e-6, rtol=0)
    ema_a = load(tmp_path / "straight" / "last.pt").state_dict
    ema_b = load(tmp_path / "broken" / "last.pt").state_dict
    for key, value in ema_a.items():
        torch.testing.assert_close(ema_b[key], value, atol=1e-6, rtol=0)
    sa = load_state(tmp_path / "straight" / "train_state.pt")
    sb = load_state(tmp_path / "broken" / "train_state.pt")
    assert sa["scheduler"]["last_epoch"] == sb["scheduler"]["last_epoch"] == 4
    assert [int(r["step"]) for r in log_rows(tmp_path / "broken")] == [2, 4]
    # finished: a rerun does nothing
    assert train(broken, progress=False) == tmp_path / "broken" / "best.pt"
    assert load_state(tmp_path / "broken" / "train_state.pt")["step"] == 4


def test_kill_9_mid_epoch_resumes_from_the_mid_epoch_state(tiny_config, tmp_path):
    """A real SIGKILL right after the mid-epoch state save at step 3 (5 steps per epoch);
    rerunning the same command continues from step 3 and reaches the uninterrupted weights."""
    config = with_optim(tiny_config, max_steps=4, epochs=2)
    config = dataclasses.replace(config, state_every=3)
    straight = dataclasses.replace(config, out_dir=str(tmp_path / "straight"))
    train(straight, progress=False)
    killed = dataclasses.replace(config, out_dir=str(tmp_path / "killed"))
    yaml_path = dump_config(killed, tmp_path / "killed.yaml")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "tests.train.crash_run", "3", "train", str(yaml_path),
           "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert load_state(tmp_path / "killed" / "train_state.pt")["step"] == 3
    assert not (tmp_path / "killed" / "last.pt").exists()  # no epoch ended before the kill
    assert main(["train", str(yaml_path), "--no-progress"]) == 0
    a = load(tmp_path / "straight" / "last.pt", use_ema=False)
    b = load(tmp_path / "killed" / "last.pt", use_ema=False)
    assert b.metadata["provenance"]["steps"] == 4
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value, atol=1e-6, rtol=0)


def test_resume_drops_log_rows_of_steps_it_redoes(tiny_config, tmp_path):
    """A run killed between state saves has logged steps past its last state; resuming redoes
    them, so their rows must go, or log.csv (and the learning curve) would hold them twice."""
    config = dataclasses.replace(with_optim(tiny_config, max_steps=4, epochs=2), log_every=1)
    train(config, stop_at_step=2, progress=False)
    out = Path(config.out_dir)
    with (out / "log.csv").open("a", newline="") as fh:  # what the killed process wrote
        csv.writer(fh).writerow(["3", "0.6", "", "99.0"])
    train(config, progress=False)
    steps = [int(r["step"]) for r in log_rows(out)]
    assert steps == [1, 2, 3, 4]
    assert float(log_rows(out)[2]["train_loss"]) != 99.0


def test_resume_refuses_a_changed_config(tiny_config):
    train(tiny_config, stop_at_step=1, progress=False)
    with pytest.raises(ValueError, match=r"optim.lr: 0.005 -> 0.001"):
        Trainer(with_optim(tiny_config, lr=1e-3), progress=False)
    Trainer(with_optim(tiny_config, epochs=3), progress=False)  # longer schedule is fine


def test_epoch_shuffles_cover_the_data_once(tiny_config):
    trainer = Trainer(tiny_config, progress=False)
    assert trainer.steps_per_epoch == 5 and trainer.total_steps == 10
    epoch0 = np.concatenate([trainer.batch_indices(s) for s in range(5)])
    epoch1 = np.concatenate([trainer.batch_indices(s) for s in range(5, 10)])
    assert sorted(epoch0) == sorted(epoch1) == list(range(18))
    assert not np.array_equal(epoch0, epoch1)


def test_model_config_is_completed_from_the_data(tiny_config):
    trainer = Trainer(tiny_config, progress=False)
    cfg = trainer.model.config
    refs = trainer.prepared.element_references
    assert cfg.element_energies[78] == pytest.approx(refs[78])
    assert cfg.energy_mean == 0.0
    scale = trainer.prepared.normalization.scale
    frames = [s.atoms for s in trainer.train_set.samples]
    assert cfg.avg_num_nodes == pytest.approx(np.mean([len(a) for a in frames]))
    # per-atom normalisation: the head divides by avg_num_nodes, energy_std multiplies it back
    assert cfg.force_std == scale and cfg.energy_std == pytest.approx(scale * cfg.avg_num_nodes)
    batch = collate(trainer.train_set.samples, cfg.cutoff, cfg.max_neighbors)
    assert cfg.avg_degree == pytest.approx(batch.graph.num_edges / batch.graph.num_atoms)


def test_fitted_fields_and_unseen_elements_are_refused(tiny_config, tiny_data, tmp_path):
    model = dataclasses.replace(tiny_config.model, config={"energy_std": 2.0})
    with pytest.raises(ValueError, match="trainer fits from the training data"):
        Trainer(dataclasses.replace(tiny_config, model=model), progress=False)
    val_only = dataclasses.replace(tiny_config.data, train=(tiny_data[1],), val=(tiny_data[0],))
    with pytest.raises(ValueError, match=r"element\(s\) Z=\[46, 79\]"):
        Trainer(dataclasses.replace(tiny_config, data=val_only), progress=False)


def test_conservative_model_trains(tiny_config):
    model_cfg = dict(tiny_config.model.config, forces="conservative", envelope="polynomial")
    model_cfg["max_neighbors"] = None
    model = dataclasses.replace(tiny_config.model, config=model_cfg)
    config = with_optim(dataclasses.replace(tiny_config, model=model), max_steps=2)
    best = train(config, progress=False)
    restored = load_model(best)
    assert restored.conservative and restored.config.envelope == "polynomial"


def test_cli_train(tiny_config, tmp_path, capsys):
    path = dump_config(with_optim(tiny_config, max_steps=2), tmp_path / "c.yaml")
    out = tmp_path / "cli_run"
    assert main(["train", str(path), "--out", str(out), "--no-progress"]) == 0
    assert f"best checkpoint: {out / 'best.pt'}" in capsys.readouterr().out
    assert load_state(out / "train_state.pt")["step"] == 2
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
