"""Allegro and the L-set GCN train with the trainer and reload from its checkpoints."""

from __future__ import annotations

import csv
import dataclasses
import math

import pytest

from equicat.checkpoints import load_model
from equicat.train import train
from equicat.train.trainer import Trainer

TINY = {
    "allegro": {"num_layers": 1, "lmax": 1, "num_channels": 4, "two_body_hidden": [8, 8],
                "latent_hidden": [8], "edge_energy_hidden": [8], "cutoff": 4.0},
    "gcn": {"degrees": [0, 3, 4], "hidden_channels": 2, "atom_embedding_dim": 8,
            "num_layers": 1, "num_bessel": 6, "radial_hidden": 8, "readout_hidden": 8,
            "cutoff": 4.0},
}  # fmt: skip


def _config(tiny_config, name: str, max_steps: int):
    model = dataclasses.replace(tiny_config.model, name=name, config=TINY[name])
    optim = dataclasses.replace(tiny_config.optim, max_steps=max_steps)
    return dataclasses.replace(tiny_config, model=model, optim=optim, log_every=1)


@pytest.mark.parametrize("name", sorted(TINY))
def test_model_config_is_completed_per_atom(tiny_config, name):
    trainer = Trainer(_config(tiny_config, name, 1), progress=False)
    cfg, prepared = trainer.model.config, trainer.prepared
    # no avg_num_nodes field: both models sum per-atom energies, so energy_std = scale
    assert cfg.energy_std == pytest.approx(prepared.normalization.scale)
    assert cfg.element_energies[78] == pytest.approx(prepared.element_references[78])
    assert cfg.avg_degree != type(cfg)().avg_degree  # measured on the data


@pytest.mark.parametrize("name", sorted(TINY))
def test_trains_and_reloads(tiny_config, name):
    config = _config(tiny_config, name, 3)
    best = train(config, progress=False)
    with config.out_dir and open(f"{config.out_dir}/log.csv") as fh:
        rows = list(csv.DictReader(fh))
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert any(r["val_energy_mae"] for r in rows)
    model = load_model(best)
    assert model.conservative and type(model).__name__ in ("Allegro", "LSetGCN")
