"""The run log: ``log.csv`` always, TensorBoard event files on request.

TensorBoard needs the optional ``tensorboard`` package (``pip install 'equicat[tensorboard]'``);
it is imported only when ``tensorboard: true`` is configured.
"""

from __future__ import annotations

import csv
import math
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["LOG_COLUMNS", "RunLog", "summary_writer"]

LOG_COLUMNS = (
    "step", "epoch", "lr", "train_loss", "train_energy_loss", "train_force_loss", "val_loss",
    "val_energy_mae", "val_energy_mae_per_atom", "val_force_mae", "val_force_l2_mae",
    "seconds_per_step", "time",
)  # fmt: skip


def summary_writer(log_dir: Path) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into ``log_dir``.

    Raises:
        ImportError: ``tensorboard`` is not installed (the message says how to get it).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError(
            "tensorboard: true needs the tensorboard package: pip install "
            "'equicat[tensorboard]' (or tensorboard>=2.10), or set tensorboard: false; "
            "log.csv is written either way"
        ) from None
    return SummaryWriter(log_dir=str(log_dir))


class RunLog:
    """Appends rows to ``out/log.csv`` and, optionally, scalars to ``out/tensorboard``.

    Args:
        out: The run directory.
        tensorboard: Also write TensorBoard scalars (tag = column name, x = step).
    """

    def __init__(self, out: Path, tensorboard: bool = False) -> None:
        self.path = out / "log.csv"
        out.mkdir(parents=True, exist_ok=True)
        self.writer = summary_writer(out / "tensorboard") if tensorboard else None

    def write(self, row: dict[str, Any]) -> None:
        """One row (missing columns left empty)."""
        row = dict(row, time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        new = not self.path.exists()
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "time") and isinstance(value, (int, float)):
                    if math.isfinite(value):
                        self.writer.add_scalar(key, value, int(row["step"]))
            self.writer.flush()

    def drop_rows_after(self, step: int) -> None:
        """Remove rows logged after ``step`` (a resumed run redoes those steps).

        A run killed between two state saves has logged steps it will take again after
        resuming from the earlier save; without this the CSV would hold them twice and a
        learning curve would double back. The file is replaced atomically.

        Args:
            step: The optimizer step the run resumes from; rows with a larger step go.
        """
        if not self.path.exists():
            return
        with self.path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        keep = [r for r in rows if r.get("step") and int(r["step"]) <= step]
        if len(keep) == len(rows):
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=LOG_COLUMNS)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in LOG_COLUMNS} for r in keep)
        os.replace(tmp, self.path)

    def close(self) -> None:
        """Close the TensorBoard writer (the CSV is closed after every row)."""
        if self.writer is not None:
            self.writer.close()
