"""EST trains with the trainer (config completed from the data) and reloads from its checkpoint."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest

from equicat.checkpoints import load_model
from equicat.train import train
from equicat.train.trainer import Trainer

from .conftest import TINY_MODEL

EST_TINY = {**TINY_MODEL, "est_points": 24, "est_heads": 2, "est_head_channels": 4,
            "est_expert_channels": 8}  # fmt: skip


def _config(tiny_config, max_steps: int, **extra):
    model = dataclasses.replace(tiny_config.model, name="est", config={**EST_TINY, **extra})
    optim = dataclasses.replace(tiny_config.optim, max_steps=max_steps)
    return dataclasses.replace(tiny_config, model=model, optim=optim, log_every=1)


def test_model_config_is_completed_from_the_data(tiny_config):
    trainer = Trainer(_config(tiny_config, 1), progress=False)
    cfg = trainer.model.config
    assert type(trainer.model).__name__ == "EST" and cfg.est_points == 24
    assert cfg.avg_num_nodes != type(cfg)().avg_num_nodes  # measured on the data
    assert cfg.avg_degree != type(cfg)().avg_degree


@pytest.mark.parametrize("forces", ["direct", "conservative"])
def test_trains_and_reloads(tiny_config, forces):
    config = _config(tiny_config, 2, forces=forces)
    best = train(config, progress=False)
    with open(f"{config.out_dir}/log.csv") as fh:
        rows = list(csv.DictReader(fh))
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    model = load_model(best)
    assert type(model).__name__ == "EST" and model.config.forces == forces
