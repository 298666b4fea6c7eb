"""Training: typed configs, element references, losses, EMA, schedules and the trainer."""

from equicat.train.config import (
    DataConfig,
    LossConfig,
    ModelSpec,
    OptimConfig,
    QM9Source,
    TrainConfig,
    dump_config,
    load_config,
)
from equicat.train.references import (
    Normalization,
    compute_normalization,
    fit_element_references,
)
from equicat.train.trainer import Trainer, train

__all__ = [
    "DataConfig",
    "LossConfig",
    "ModelSpec",
    "Normalization",
    "OptimConfig",
    "QM9Source",
    "TrainConfig",
    "Trainer",
    "compute_normalization",
    "dump_config",
    "fit_element_references",
    "load_config",
    "train",
]
