"""Typed training configuration and its YAML form.

A YAML file mirrors :class:`TrainConfig` section by section::

    model:
      name: equiformer_v2
      config: {num_layers: 2, lmax: 2, mmax: 2, forces: conservative, cutoff: 5.0}
    data:
      train: [data/oc_emt/train.extxyz]
      val: [data/oc_emt/val.extxyz]
      batch_size: 8
    optim: {lr: 0.002, weight_decay: 0.001, epochs: 20, warmup_steps: 50, ema_decay: 0.99}
    loss: {energy_coef: 1.0, force_coef: 10.0}
    seed: 0
    device: auto
    out_dir: runs/oc_emt

For QM9 the ``data`` section names the source instead of files (energy-only training: the
target is the energy label, and the force term of the loss is dropped)::

    data:
      qm9: {target: U0, train: 5000, val: 500, seed: 0}
      batch_size: 32

Unknown keys are refused with the section and the known keys named. Paths are kept as
written (relative ones are relative to the working directory).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ModelSpec",
    "DataConfig",
    "QM9Source",
    "OptimConfig",
    "LossConfig",
    "TrainConfig",
    "load_config",
    "dump_config",
]


@dataclass(frozen=True)
class ModelSpec:
    """Which model to train.

    Attributes:
        name: Name in :data:`equicat.models.MODELS`.
        config: Config values of that model (plain data). ``element_energies``,
            ``energy_mean``, ``energy_std`` and ``force_std`` are fitted by the trainer and
            must not be set; ``avg_num_nodes`` and ``avg_degree`` are measured on the training
            data unless given.
    """

    name: str = "equiformer_v2"
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", _plain(dict(self.config or {})))


@dataclass(frozen=True)
class QM9Source:
    """QM9 molecules (``qm9pack``) as an energy-only training set.

    The molecules are seeded random subsets of the train and val parts of
    :func:`equicat.data.qm9.qm9_split` (see :func:`equicat.data.qm9.qm9_subset_indices`).

    Attributes:
        target: The total-energy target used as the energy label: ``U0``, ``U``, ``H`` or
            ``G`` (eV). Per-element references are fitted on the training molecules as for
            any data, so the network learns what is left after them.
        train: Training molecules (<= 110,000).
        val: Validation molecules (<= 10,000).
        seed: Seed of the split and of the subset draw.
    """

    target: str = "U0"
    train: int = 5000
    val: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        from equicat.data.qm9 import ENERGY_TARGETS

        if self.target not in ENERGY_TARGETS:
            raise ValueError(
                f"data.qm9.target must be one of {list(ENERGY_TARGETS)} (a total energy the "
                f"model's energy can learn), got {self.target!r}"
            )
        for name in ("train", "val", "seed"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"data.qm9.{name} must be an integer, got "
                                 f"{getattr(self, name)!r}")  # fmt: skip
        if not (1 <= self.train <= 110_000 and 1 <= self.val <= 10_000):
            raise ValueError(
                f"data.qm9 needs 1..110000 train and 1..10000 val molecules, got "
                f"train={self.train}, val={self.val}"
            )


@dataclass(frozen=True)
class DataConfig:
    """Training and validation data: structure files, or a QM9 source.

    Attributes:
        train: Labelled structure files (extxyz as written by ``equicat datagen``).
        val: Validation files (split by system from the training ones).
        qm9: Train on QM9 molecules instead of files (energy labels only; no force loss).
            A mapping in YAML; set either this or ``train``/``val``.
        batch_size: Structures per training step.
        val_batch_size: Structures per validation forward pass.
    """

    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    qm9: QM9Source | None = None
    batch_size: int = 8
    val_batch_size: int = 16

    def __post_init__(self) -> None:
        if isinstance(self.qm9, dict):
            _check_keys(self.qm9, QM9Source, "section 'data.qm9'")
            object.__setattr__(self, "qm9", QM9Source(**self.qm9))
        elif self.qm9 is not None and not isinstance(self.qm9, QM9Source):
            raise ValueError(f"data.qm9 must be a mapping or null, got {self.qm9!r}")
        if self.qm9 is not None and (self.train or self.val):
            raise ValueError(
                "data names both files (train/val) and a QM9 source (qm9); set one of them"
            )
        for name in ("train", "val"):
            value = getattr(self, name)
            paths = (value,) if isinstance(value, (str, os.PathLike)) else value
            object.__setattr__(self, name, tuple(str(p) for p in paths))
        if self.batch_size < 1 or self.val_batch_size < 1:
            raise ValueError("data.batch_size and data.val_batch_size must be >= 1")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay, gradient clipping and EMA weights.

    Attributes:
        lr: Peak learning rate.
        weight_decay: AdamW decoupled weight decay (matrices only; biases, norms and
            embeddings are not decayed).
        epochs: Passes over the training data.
        max_steps: Optional cap on optimizer steps; training stops at whichever of
            ``epochs`` and ``max_steps`` comes first, and the cosine runs over that length.
        warmup_steps: Linear warm-up from ``lr / warmup_steps`` to ``lr``.
        min_lr_ratio: Learning rate at the end of the cosine, as a fraction of ``lr``.
        grad_clip: Largest gradient 2-norm (``None``: no clipping).
        ema_decay: Decay of the exponential moving average of the weights (``None``: none).
            Validation and the shipped weights use the average.
    """

    lr: float = 2e-3
    weight_decay: float = 1e-3
    epochs: int = 10
    max_steps: int | None = None
    warmup_steps: int = 50
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 10.0
    ema_decay: float | None = 0.99

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.epochs < 1 or self.warmup_steps < 0:
            raise ValueError("optim needs lr > 0, epochs >= 1 and warmup_steps >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"optim.max_steps must be >= 1 or null, got {self.max_steps}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in [0, 1) or null, got {self.ema_decay}")


@dataclass(frozen=True)
class LossConfig:
    """Loss ``energy_coef * L_E + force_coef * L_F`` (see :mod:`equicat.train.loss`).

    Attributes:
        energy_coef: Weight of the per-atom energy MAE.
        force_coef: Weight of the force L2-MAE.
        free_atoms_only: Score forces only on atoms not held by ``FixAtoms`` (OC20 style).
    """

    energy_coef: float = 1.0
    force_coef: float = 10.0
    free_atoms_only: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; stored in its checkpoints.

    Attributes:
        model: What to train.
        data: Data files and batch sizes.
        optim: Optimizer, schedule and EMA.
        loss: Loss weights.
        seed: Seeds the weight initialisation and the epoch shuffles.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        dtype: ``"float32"`` or ``"float64"`` for weights and graphs.
        out_dir: Where checkpoints, the log and the training state go.
        log_every: Steps between training-loss rows of ``log.csv`` (validation rows come
            at the end of every epoch regardless).
        amp: Mixed precision of the training forward pass: ``null``, ``"bf16"`` (CUDA or
            CPU) or ``"fp16"`` (CUDA only, with a gradient scaler); see
            :mod:`equicat.train.precision`.
        tensorboard: Also log to TensorBoard event files in ``out_dir/tensorboard`` (needs
            the optional ``tensorboard`` package).
        state_every: Steps between saves of ``train_state.pt`` inside an epoch, so a run
            killed mid-epoch loses at most this many steps (``null``: only at epoch ends,
            where checkpoints and validation also happen).
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    seed: int = 0
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    out_dir: str = "runs/train"
    log_every: int = 50
    amp: Literal["bf16", "fp16"] | None = None
    tensorboard: bool = False
    state_every: int | None = 200

    def __post_init__(self) -> None:
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp must be null, 'bf16' or 'fp16', got {self.amp!r}")
        if self.state_every is not None and self.state_every < 1:
            raise ValueError(f"state_every must be >= 1 or null, got {self.state_every}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        object.__setattr__(self, "out_dir", str(self.out_dir))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists, dicts, scalars), as stored in checkpoints and YAML."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from plain data (e.g. parsed YAML); unknown keys raise ``ValueError``."""
        sections = {"model": ModelSpec, "data": DataConfig, "optim": OptimConfig,
                    "loss": LossConfig}  # fmt: skip
        data = dict(data or {})
        _check_keys(data, cls, "the config")
        kwargs = {}
        for key, value in data.items():
            if key in sections:
                value = dict(value or {})
                _check_keys(value, sections[key], f"section {key!r}")
                value = sections[key](**value)
            kwargs[key] = value
        return cls(**kwargs)


def _check_keys(data: dict[str, Any], cls: type, where: str) -> None:
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; known keys: {known}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a :class:`TrainConfig` from a YAML file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from err
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of sections")
    try:
        return TrainConfig.from_dict(data or {})
    except (TypeError, ValueError) as err:
        raise ValueError(f"config file {str(path)!r}: {err}") from err


def dump_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write ``config`` as YAML, atomically; :func:`load_config` reads it back equal."""
    import yaml

    from equicat.data.dataset import atomic_open

    with atomic_open(path) as fh:
        yaml.safe_dump(config.to_dict(), fh, sort_keys=False)
    return Path(path)
