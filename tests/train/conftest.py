"""A 3-system OC-EMT data set and a tiny model config shared by the training tests."""

from __future__ import annotations

import pytest
import torch

from equicat.data.dataset import write_frames
from equicat.data.oc_emt import generate
from equicat.train import TrainConfig

TINY_MODEL = {
    "num_layers": 1, "lmax": 1, "mmax": 1, "sphere_channels": 8, "attn_hidden_channels": 8,
    "num_heads": 2, "attn_alpha_channels": 4, "attn_value_channels": 2,
    "ffn_hidden_channels": 8, "edge_channels": 8, "num_distance_basis": 16,
    "grid_resolution": 6, "cutoff": 4.0, "max_neighbors": 12, "forces": "direct",
}  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and two threads on a busy 2-core machine run
    several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """(train path, val path): 3 systems for training, system 0's frames again for validation."""
    frames = generate(3, seed=0, relax_steps=8, keep_every=2, rattle_frames=1)
    root = tmp_path_factory.mktemp("oc_emt")
    train = write_frames(root / "train.extxyz", frames)
    val = write_frames(root / "val.extxyz", [f for f in frames if f.info["system_id"] == 0])
    return str(train), str(val)


@pytest.fixture
def tiny_config(tiny_data, tmp_path):
    """A config training the tiny model for a few steps into ``tmp_path / 'run'``."""
    train, val = tiny_data
    return TrainConfig.from_dict(
        {
            "model": {"name": "equiformer_v2", "config": dict(TINY_MODEL)},
            "data": {"train": [train], "val": [val], "batch_size": 4, "val_batch_size": 8},
            "optim": {"lr": 5e-3, "epochs": 2, "warmup_steps": 2, "ema_decay": 0.9},
            "seed": 0,
            "device": "cpu",
            "out_dir": str(tmp_path / "run"),
        }
    )
