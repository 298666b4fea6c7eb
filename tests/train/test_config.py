from __future__ import annotations

import pytest

from equicat.train import TrainConfig, dump_config, load_config
from equicat.train.config import OptimConfig


def test_yaml_round_trip(tmp_path):
    config = TrainConfig.from_dict(
        {
            "model": {"name": "equiformer_v2", "config": {"lmax": 2, "cutoff": 5.0}},
            "data": {"train": ["a.extxyz", "b.extxyz"], "val": "c.extxyz", "batch_size": 3},
            "optim": {"lr": 1e-3, "max_steps": 7, "grad_clip": None, "ema_decay": None},
            "loss": {"force_coef": 4.0, "free_atoms_only": True},
            "seed": 5,
            "dtype": "float64",
            "out_dir": "runs/x",
        }
    )
    assert config.data.val == ("c.extxyz",)
    path = dump_config(config, tmp_path / "c.yaml")
    again = load_config(path)
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_defaults_and_empty_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == TrainConfig()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("optim: {lrate: 0.1}", r"unknown key\(s\) \['lrate'\] in section 'optim'"),
        ("epochs: 3", r"unknown key\(s\) \['epochs'\] in the config"),
        ("- a\n- b", "must hold a mapping"),
        ("optim: {ema_decay: 1.5}", "ema_decay"),
        ("dtype: float16", "dtype"),
        ("optim: {lr: [1, 2", "not valid YAML"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_config(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config("/nonexistent/config.yaml")


def test_optim_validation():
    with pytest.raises(ValueError, match="max_steps"):
        OptimConfig(max_steps=0)
