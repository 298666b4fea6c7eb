"""Parity plots (predicted against reference) as PNG, with matplotlib's Agg backend."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Panel", "parity_plot"]


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
            "parity plots need matplotlib: pip install 'matplotlib>=3.6' (or equicat's "
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
