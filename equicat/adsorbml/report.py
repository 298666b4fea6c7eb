"""PNG report of an AdsorbML run: ML vs oracle energies, and the chosen geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms

__all__ = ["write_report", "render"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("the AdsorbML report needs matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    import os

    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def write_report(out: Path, summary: dict[str, Any], chosen: Atoms | None) -> None:
    """``report.png`` (oracle vs ML energy of the top k) and ``chosen.png``."""
    plt = _pyplot()
    rows = summary["top_k"]
    fig, ax = plt.subplots(figsize=(4.5, 4.0))
    if rows:
        ml = [r["ml_energy"] for r in rows]
        ora = [r["oracle_energy"] for r in rows]
        ax.scatter(ml, ora, c="tab:blue")
        for r in rows:
            ax.annotate(str(r["placement"]), (r["ml_energy"], r["oracle_energy"]), fontsize=7)
        lo, hi = min(ml + ora), max(ml + ora)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("ML energy of relaxed structure (eV)")
    ax.set_ylabel("oracle single-point energy (eV)")
    ax.set_title(
        f"top {len(rows)} of {summary['valid']} valid / {summary['placements']} placements",
        fontsize=9,
    )
    _save(fig, out / "report.png")
    plt.close(fig)
    if chosen is not None:
        render(chosen, out / "chosen.png")


def render(atoms: Atoms, path: Path) -> None:
    """Side and top views of ``atoms`` (repeated 2x2 in-plane) to a PNG."""
    from ase.visualize.plot import plot_atoms

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    shown = atoms.repeat((2, 2, 1))
    plot_atoms(shown, axes[0], rotation="-80x")
    plot_atoms(shown, axes[1])
    axes[0].set_title("side (cell repeated 2x2)", fontsize=9)
    axes[1].set_title("top (cell repeated 2x2)", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    _save(fig, path)
    plt.close(fig)
