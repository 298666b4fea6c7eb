"""Parity plots and learning curves as PNG, with matplotlib's Agg backend."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Panel", "learning_curve", "parity_plot", "read_log"]


@dataclass(frozen=True)
class Panel:
    """One parity panel.

    Attributes:
        title: Panel title (e.g. ``"energy"``).
        predicted: [K] predicted values.
        reference: [K] reference values, same unit.
        unit: Axis unit (e.g. ``"eV"``).
        mae: Shown in the panel's corner when given (same unit).
    """

    title: str
    predicted: np.ndarray
    reference: np.ndarray
    unit: str
    mae: float | None = None


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "plots need matplotlib: pip install 'matplotlib>=3.6' (or equicat's "
            "dependencies), or skip the plot"
        ) from None
    matplotlib.use("Agg", force=True)  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def parity_plot(path: str | os.PathLike, panels: list[Panel], title: str = "") -> Path:
    """Write one row of parity panels (hexbin density for large sets) to ``path`` (PNG).

    Written to a temporary file beside ``path`` and renamed into place.
    """
    from equicat.data.dataset import atomic_open

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        ref = np.asarray(panel.reference, float).ravel()
        pred = np.asarray(panel.predicted, float).ravel()
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        pad = 0.02 * (hi - lo or 1.0)
        if ref.size > 5000:
            ax.hexbin(ref, pred, gridsize=80, bins="log", mincnt=1, cmap="viridis")
        else:
            ax.scatter(ref, pred, s=6, alpha=0.6, linewidths=0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), aspect="equal")
        ax.set_xlabel(f"reference {panel.title} ({panel.unit})")
        ax.set_ylabel(f"predicted {panel.title} ({panel.unit})")
        ax.set_title(panel.title)
        if panel.mae is not None:
            ax.text(0.04, 0.93, f"MAE {panel.mae:.4g} {panel.unit}\nn = {ref.size}",
                    transform=ax.transAxes, va="top", fontsize=9)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)
    return Path(path)


def read_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The numeric columns of a trainer's ``log.csv`` (empty cells -> NaN), one array each."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training log at {str(path)!r}; train first")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"training log {str(path)!r} has no rows yet")
    columns: dict[str, np.ndarray] = {}
    for key in rows[0]:
        try:
            columns[key] = np.array([float(r[key]) if r[key] else np.nan for r in rows])
        except ValueError:
            continue  # a text column (the time stamp)
    return columns


# (log column, legend label, panel): panel 0 is dimensionless, 1 energy (eV), 2 forces (eV/Å)
_CURVES = (
    ("train_loss", "train loss", 0),
    ("val_loss", "val loss", 0),
    ("val_energy_mae", "val energy MAE", 1),
    ("val_force_mae", "val force MAE", 2),
)


def learning_curve(run_dir: str | os.PathLike, path: str | os.PathLike | None = None) -> Path:
    """Plot ``RUN_DIR/log.csv`` against optimizer step, log y, as a PNG.

    Panels: the training loss (every logged row) and validation loss (dimensionless, in units
    of the target scale); the validation energy MAE (eV per structure); the validation force
    MAE (eV/Å), only when the run had force labels.

    Args:
        run_dir: A training run's ``out_dir``.
        path: Where to write; ``RUN_DIR/learning_curve.png`` by default.

    Returns:
        The PNG's path (written atomically).
    """
    from equicat.data.dataset import atomic_open

    log = read_log(Path(run_dir) / "log.csv")
    path = Path(run_dir) / "learning_curve.png" if path is None else Path(path)
    step = log["step"]
    # curves with at least one positive value (a log axis shows nothing else)
    present = [(c, label, k) for c, label, k in _CURVES if c in log and (log[c] > 0).any()]
    panels = sorted({k for _, _, k in present}) or [0]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    ylabels = ("loss (target-scale units)", "energy MAE (eV)", "force MAE (eV/Å)")
    for ax, k in zip(axes[0], panels, strict=True):
        for column, label, panel in present:
            if panel != k:
                continue
            y = log[column]
            keep = np.isfinite(y) & (y > 0)  # log axis: drop empty and zero cells
            style = "-" if column == "train_loss" else "o-"
            ax.plot(step[keep], y[keep], style, ms=3, lw=1.2, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabels[k])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"learning curve: {run_dir}", fontsize=9)
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path
