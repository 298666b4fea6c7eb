"""Mixed precision, data-parallel training (torchrun, gloo) and TensorBoard logging."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from equicat.checkpoints import load
from equicat.data.dataset import StructureDataset, collate
from equicat.train import LossConfig, TrainConfig, dump_config, train
from equicat.train.loss import compute_loss
from equicat.train.state import resume_conflicts
from equicat.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]


def short(config: TrainConfig, steps: int, **changes) -> TrainConfig:
    optim = dataclasses.replace(config.optim, max_steps=steps, epochs=1)
    return dataclasses.replace(config, optim=optim, log_every=1, **changes)


@pytest.mark.parametrize("free_atoms_only", [False, True])
def test_rank_parts_with_global_counts_sum_to_the_full_batch_loss(tiny_data, free_atoms_only):
    data = StructureDataset.from_files(tiny_data[0])
    samples = data.samples[:5]
    config = LossConfig(free_atoms_only=free_atoms_only)
    full = collate(samples, 4.0, dtype=torch.float64)
    torch.manual_seed(0)
    out = {"energy": full.energy + torch.randn(5, dtype=torch.float64),
           "forces": full.forces + torch.randn_like(full.forces)}  # fmt: skip
    whole = compute_loss(out, full, 0.7, config)
    scored = int((~full.graph.fixed).sum()) if free_atoms_only else full.graph.num_atoms
    offsets = [0, *torch.cumsum(full.graph.natoms, 0).tolist()]
    total = 0.0
    for idx in ([0, 2, 4], [1, 3]):  # rank 0's and rank 1's structures of a 2-process run
        batch = collate([samples[i] for i in idx], 4.0, dtype=torch.float64)
        rows = torch.cat([torch.arange(offsets[i], offsets[i + 1]) for i in idx])  # [n_part]
        mine = {"energy": out["energy"][idx], "forces": out["forces"][rows]}
        total = total + compute_loss(mine, batch, 0.7, config, (5, scored)).total
    torch.testing.assert_close(total, whole.total)


def test_fp16_off_cuda_and_amp_with_float64_are_refused(tiny_config):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        Trainer(dataclasses.replace(tiny_config, amp="fp16"), progress=False)
    with pytest.raises(ValueError, match="use dtype: float32"):
        Trainer(dataclasses.replace(tiny_config, amp="bf16", dtype="float64"), progress=False)
    with pytest.raises(ValueError, match="amp must be"):
        TrainConfig.from_dict({"amp": "int8"})


@pytest.mark.skipif(
    not torch.amp.autocast_mode.is_autocast_available("cpu"), reason="no CPU autocast"
)
def test_bf16_autocast_runs_the_forward_in_bfloat16_on_cpu(tiny_config):
    config = short(tiny_config, 2, amp="bf16")
    trainer = Trainer(config, progress=False)
    seen = set()
    linear = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    trainer.run()
    assert torch.bfloat16 in seen  # the training forward ran under autocast
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    ckpt = load(Path(config.out_dir) / "last.pt")
    assert ckpt.metadata["provenance"]["steps"] == 2
    assert torch.isfinite(torch.tensor(ckpt.metadata["metrics"]["val_loss"]))


def test_tensorboard_writes_events_beside_the_csv(tiny_config):
    pytest.importorskip("tensorboard")
    config = short(tiny_config, 2, tensorboard=True)
    train(config, progress=False)
    out = Path(config.out_dir)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "log.csv").is_file()


def test_tensorboard_missing_says_how_to_get_it(tiny_config, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match=r"equicat\[tensorboard\]"):
        train(short(tiny_config, 1, tensorboard=True), progress=False)
    # switching TensorBoard on or off does not block a resume
    a, b = tiny_config.to_dict(), dict(tiny_config.to_dict(), tensorboard=True)
    assert resume_conflicts(a, b) == []
    assert resume_conflicts(a, dict(a, amp="bf16")) != []


@pytest.mark.slow
def test_torchrun_two_gloo_ranks_match_one_process(tiny_config, tmp_path):
    """batch 5 split 3 + 2 over two CPU ranks: same weights and losses as one process."""
    config = dataclasses.replace(short(tiny_config, 3), data=dataclasses.replace(
        tiny_config.data, batch_size=5))  # fmt: skip
    single = dataclasses.replace(config, out_dir=str(tmp_path / "single"))
    train(single, progress=False)
    ddp = dataclasses.replace(config, out_dir=str(tmp_path / "ddp"))
    dump_config(ddp, tmp_path / "ddp.yaml")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
           "equicat.cli.main", "train", str(tmp_path / "ddp.yaml"), "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best checkpoint:") == 1  # rank 0 alone reports and writes
    a = load(tmp_path / "single" / "last.pt", use_ema=False)
    b = load(tmp_path / "ddp" / "last.pt", use_ema=False)
    assert b.metadata["provenance"]["steps"] == 3
    for key, value in a.state_dict.items():
        torch.testing.assert_close(b.state_dict[key], value, atol=1e-5, rtol=0)
    ma, mb = a.metadata["metrics"], b.metadata["metrics"]
    for key in ("train_loss", "val_loss", "val_force_mae", "val_energy_mae"):
        assert mb[key] == pytest.approx(ma[key], rel=1e-5), key
    rows = (tmp_path / "ddp" / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header + one row per step, written once


def test_world_size_without_rank_is_refused(monkeypatch):
    from equicat.train.distributed import DistContext, init_distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed(torch.device("cpu")) == DistContext()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        init_distributed(torch.device("cpu"))
