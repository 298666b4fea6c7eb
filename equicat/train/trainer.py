"""The training loop: AdamW, warm-up + cosine, gradient clipping, EMA, validation, resume.

``train(config)`` fits element references and the target scale on the training set,
folds them into the model config (see :mod:`equicat.train.prepare`), then runs optimizer
steps over seeded per-epoch shuffles. After every epoch (and when stopped early) it
validates the EMA weights and writes, each atomically:

- ``last.pt`` and, when the validation loss improved, ``best.pt``: equicat checkpoints
  (raw and EMA weights, metrics, element references, normalisation, provenance);
- ``train_state.pt``: everything needed to continue (see :mod:`equicat.train.state`);
- a row of ``log.csv``.

Inside an epoch ``train_state.pt`` is also written every ``state_every`` steps, so a run
killed there (even by ``kill -9``) loses at most that many steps.

When the schedule ends it also plots ``learning_curve.png`` from ``log.csv``
(:func:`equicat.train.plots.learning_curve`).

Rerunning with the same ``out_dir`` resumes from ``train_state.pt``. The shuffle of epoch
``k`` is ``default_rng([seed, k])``, so a resumed run takes the same batches, and reaches the
same weights, as an uninterrupted one.

Started by ``torchrun`` the same run is data-parallel (see :mod:`equicat.train.distributed`):
each global batch is split across the ranks and gives the same gradient as on one process;
validation sums are all-reduced; rank 0 alone writes files. ``amp`` selects bf16/fp16
autocast for the training forward pass (:mod:`equicat.train.precision`); ``tensorboard``
adds TensorBoard scalars beside ``log.csv`` (:mod:`equicat.train.runlog`).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from equicat.checkpoints import save
from equicat.data.dataset import Batch, collate
from equicat.models import build
from equicat.models.heads import energy_only
from equicat.train.config import TrainConfig, dump_config
from equicat.train.distributed import all_reduce_sum, barrier, init_distributed, shutdown
from equicat.train.ema import EMA
from equicat.train.loss import Metrics, compute_loss
from equicat.train.optim import make_optimizer, make_scheduler
from equicat.train.plots import learning_curve
from equicat.train.precision import autocast, check_amp, make_scaler
from equicat.train.prepare import Prepared, prepare
from equicat.train.runlog import LOG_COLUMNS, RunLog
from equicat.train.sources import load_datasets
from equicat.train.state import load_state, resume_conflicts, save_state

__all__ = ["Trainer", "train", "resolve_device", "LOG_COLUMNS"]


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """One training run in ``config.out_dir`` (fresh, or resumed from its state file).

    Args:
        config: The run's configuration.
        progress: Show tqdm progress bars.
    """

    def __init__(self, config: TrainConfig, progress: bool = True) -> None:
        self.config, self.progress = config, progress
        self.out = Path(config.out_dir)
        self.device = resolve_device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        check_amp(config.amp, self.device, self.dtype)
        self.dist = init_distributed(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.train_set, self.val_set, self.data_record = load_datasets(config.data)
        # energy-only data (QM9): conservative models skip -dE/dr and its double backward
        self.energy_only = not self.train_set.has_forces
        state = self._saved_state()
        if state is not None:
            self.prepared = Prepared.from_dict(state["prepared"])
        else:
            self.prepared = prepare(config.model, self.train_set)
        self.scale = self.prepared.normalization.scale
        torch.manual_seed(config.seed)
        self.model = self._build()
        self.eval_model = self._build().eval()
        self.forward_model = self.model  # the DDP wrapper when data-parallel
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = torch.nn.parallel.DistributedDataParallel(self.model, ids)
        self.scaler = make_scaler(config.amp, self.device)
        self.log: RunLog | None = None  # opened by run(), on rank 0
        opt = config.optim
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.data.batch_size)
        self.total_steps = self.steps_per_epoch * opt.epochs
        if opt.max_steps is not None:
            self.total_steps = min(self.total_steps, opt.max_steps)
        self.optimizer = make_optimizer(self.model, opt.lr, opt.weight_decay)
        self.scheduler = make_scheduler(
            self.optimizer, opt.warmup_steps, self.total_steps, opt.min_lr_ratio
        )
        self.ema = EMA(self.model, opt.ema_decay)
        self.step, self.best_loss = 0, math.inf
        if state is not None:
            self._restore(state)
        self._sums = np.zeros(3)
        self._count = 0

    def _saved_state(self) -> dict[str, Any] | None:
        """The state file of a run to resume (checked against the config), or ``None``."""
        path = self.out / "train_state.pt"
        if not path.is_file():
            return None
        state = load_state(path)
        conflicts = resume_conflicts(state["config"], self.config.to_dict())
        if conflicts:
            raise ValueError(
                f"{self.out} holds a run with another config ({'; '.join(conflicts)}); "
                "use a fresh out_dir or the original config"
            )
        return state

    def _build(self) -> torch.nn.Module:
        model = build(self.config.model.name, **self.prepared.model_config)
        return model.to(device=self.device, dtype=self.dtype)

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load(state["ema"], state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best_loss = int(state["step"]), float(state["best_loss"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def batch_indices(self, step: int) -> np.ndarray:
        """Training-set indices of optimizer step ``step`` (0-based)."""
        epoch, k = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.train_set))
        bs = self.config.data.batch_size
        return order[k * bs : (k + 1) * bs]

    def _collate(self, samples: list) -> Batch:
        cfg = self.model.config
        return collate(samples, cfg.cutoff, cfg.max_neighbors, self.dtype).to(self.device)

    def train_step(
        self, batch: Batch, counts: tuple[float, float] | None = None, weight: float = 1.0
    ) -> None:
        """One optimizer step on ``batch`` (loss, backward, clip, AdamW, schedule, EMA).

        Args:
            batch: The structures of this step (this rank's part when data-parallel).
            counts: Global ``(structures, scored atoms)`` of the step when ``batch`` is one
                rank's part (see :func:`~equicat.train.loss.compute_loss`).
            weight: 0 for a rank that got no structure and runs a dummy one to keep the
                collective backward in step.
        """
        self.model.train()
        with autocast(self.config.amp, self.device), self._outputs():
            out = self.forward_model(batch.graph)
        out = {k: v.to(self.dtype) for k, v in out.items()}
        terms = compute_loss(out, batch, self.scale, self.config.loss, counts)
        parts = [weight * float(t.detach()) for t in (terms.total, terms.energy, terms.force)]
        parts = all_reduce_sum(parts, self.dist, self.device)  # the whole batch's terms
        if not np.isfinite(parts[0]):
            raise ValueError(
                f"the loss became {parts[0]} at step {self.step + 1} (energy part "
                f"{parts[1]:.4g}, force part {parts[2]:.4g}); lower optim.lr or check the "
                "training data for broken labels"
            )
        # DDP averages gradients over ranks; each rank's loss is its share of the global sum
        loss = terms.total * (weight * self.dist.world_size)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.config.optim.grad_clip is not None:
            params = [p for p in self.model.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.config.optim.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.ema.update(self.model)
        self.step += 1
        self._sums += parts
        self._count += 1

    def _local_step(self, indices: np.ndarray) -> None:
        """Train on this rank's share of the global batch ``indices``."""
        if not self.dist.enabled:
            self.train_step(self._collate([self.train_set[int(i)] for i in indices]))
            return
        mine = indices[self.dist.rank :: self.dist.world_size]
        weight = 1.0 if len(mine) else 0.0
        batch = self._collate(
            [self.train_set[int(i)] for i in (mine if len(mine) else indices[:1])]
        )
        scored = batch.graph.num_atoms
        if self.config.loss.free_atoms_only:
            scored = int((~batch.graph.fixed).sum())
        counts = all_reduce_sum([weight * len(mine), weight * scored], self.dist, self.device)
        self.train_step(batch, (float(counts[0]), float(counts[1])), weight)

    def _outputs(self) -> contextlib.AbstractContextManager:
        """Energy-only forward passes for data without force labels, else a no-op."""
        return energy_only() if self.energy_only else contextlib.nullcontext()

    def validate(self) -> dict[str, float]:
        """Errors of the EMA weights on the validation set (see :class:`Metrics`)."""
        self.eval_model.load_state_dict(self.ema.state_dict())
        metrics = Metrics(self.scale, self.config.loss)
        bs = self.config.data.val_batch_size
        samples = self.val_set.samples[self.dist.rank :: self.dist.world_size]
        for start in range(0, len(samples), bs):
            batch = self._collate(samples[start : start + bs])
            with torch.no_grad(), self._outputs():  # conservative forces re-enable grad
                out = self.eval_model(batch.graph)
            metrics.update(out, batch)
        if self.dist.enabled:
            sums = all_reduce_sum([getattr(metrics, k) for k in Metrics.SUMS], self.dist,
                                  self.device)  # fmt: skip
            for key, value in zip(Metrics.SUMS, sums, strict=True):
                setattr(metrics, key, int(value) if key in ("frames", "atoms") else float(value))
        return metrics.compute()

    def run(self, stop_at_step: int | None = None) -> Path:
        """Train until the schedule ends (or ``stop_at_step``); returns ``best.pt``'s path.

        ``stop_at_step`` ends the run early as if it were killed right after that step's
        state was saved (for tests and time-boxed sessions); rerunning resumes.
        """
        end = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        main = self.dist.is_main
        self.log = RunLog(self.out, self.config.tensorboard) if main else None  # may refuse
        if self.log is not None:
            self.log.drop_rows_after(self.step)  # steps logged after the state being resumed
        if main and self.step == 0 and not (self.out / "config.yaml").exists():
            dump_config(self.config, self.out / "config.yaml")
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step",
                   disable=not (self.progress and main))  # fmt: skip
        self._clock = (time.perf_counter(), self.step)
        while self.step < end:
            self._local_step(self.batch_indices(self.step))
            bar.update(1)
            bar.set_postfix(loss=f"{self._sums[0] / self._count:.4g}")
            if self.step % self.steps_per_epoch == 0 or self.step == end:
                self._end_of_period(bar)
                continue
            if self.step % self.config.log_every == 0:
                self._log(self._train_row())
            if self.config.state_every and self.step % self.config.state_every == 0:
                self._save_state_only()
        bar.close()
        if self.log is not None:
            self.log.close()
            if self.step >= self.total_steps:  # the finished run's learning curve
                try:
                    learning_curve(self.out)
                except Exception as exc:  # noqa: BLE001 - a plot must not fail a finished run
                    warnings.warn(
                        f"training finished, but learning_curve.png was not drawn ({exc}); "
                        f"retry with 'equicat train --plot {self.out}'",
                        stacklevel=2,
                    )
        barrier(self.dist)
        return self.out / "best.pt"

    def _train_row(self) -> dict[str, Any]:
        """Log fields of the steps since the previous row (and reset their accumulators)."""
        train = self._sums / max(self._count, 1)
        now, (then, first) = time.perf_counter(), self._clock
        row = {
            "step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4),
            "lr": self.optimizer.param_groups[0]["lr"], "train_loss": train[0],
            "train_energy_loss": train[1], "train_force_loss": train[2],
            "seconds_per_step": (now - then) / max(self.step - first, 1),
        }  # fmt: skip
        self._sums[:], self._count, self._clock = 0.0, 0, (now, self.step)
        return row

    def _end_of_period(self, bar: tqdm) -> None:
        """Validate, write checkpoints, state and a log row."""
        row = self._train_row()
        val = self.validate()
        row.update({f"val_{k}": v for k, v in val.items() if k != "frames"})
        metrics = {"step": self.step, "epoch": row["epoch"], "val_frames": val["frames"]}
        metrics.update({k: float(v) for k, v in row.items() if k.startswith(("val_", "train_"))})
        improved = val["loss"] < self.best_loss
        self.best_loss = min(self.best_loss, val["loss"])
        if self.dist.is_main:
            self._checkpoint(self.out / "last.pt", metrics)
            if improved:
                self._checkpoint(self.out / "best.pt", metrics)
            save_state(self.out / "train_state.pt", self._state())
        self._log(row)
        barrier(self.dist)  # files complete before any rank goes on (or stops)
        if not self.dist.is_main:
            return
        forces = f", forces {val['force_mae']:.4f} eV/Å" if "force_mae" in val else ""
        bar.write(
            f"step {self.step} (epoch {row['epoch']:.2f}): train loss {row['train_loss']:.4g}, "
            f"val energy {val['energy_mae'] * 1e3:.1f} meV "
            f"({val['energy_mae_per_atom'] * 1e3:.2f} meV/atom){forces} "
            f"({row['seconds_per_step']:.2f} s/step)"
        )

    def _checkpoint(self, path: Path, metrics: dict[str, Any]) -> None:
        ema = self.ema.state_dict() if self.config.optim.ema_decay is not None else None
        save(
            self.model,
            path,
            ema_state_dict=ema,
            metrics=metrics,
            element_references=self.prepared.to_dict()["element_references"],
            normalization=self.prepared.normalization.to_dict(),
            data=self.data_record,
            steps=self.step,
            epochs=self.step / self.steps_per_epoch,
            config=self.config.to_dict(),
        )

    def _save_state_only(self) -> None:
        """Mid-epoch: write ``train_state.pt`` (no validation, no checkpoint files)."""
        if self.dist.is_main:
            save_state(self.out / "train_state.pt", self._state())
        barrier(self.dist)

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config": self.config.to_dict(),
            "prepared": self.prepared.to_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "ema_updates": self.ema.updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_loss": self.best_loss,
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
        }

    def _log(self, row: dict[str, Any]) -> None:
        if self.log is not None:  # rank 0 only
            self.log.write(row)


def train(config: TrainConfig, *, stop_at_step: int | None = None, progress: bool = True) -> Path:
    """Train (or resume) the run described by ``config``; returns the path of ``best.pt``.

    Args:
        config: The run.
        stop_at_step: Stop after this optimizer step (state saved, resumable).
        progress: Show tqdm progress bars.
    """
    trainer = Trainer(config, progress=progress)
    try:
        return trainer.run(stop_at_step)
    finally:
        shutdown(trainer.dist)
