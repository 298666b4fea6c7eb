"""``equicat is2rs``: relax initial structures and score them against reference relaxations.

OC20's IS2RS / IS2RE evaluation (:mod:`equicat.relax.metrics`): the initial structures are
relaxed exactly as ``equicat relax`` does (same options, same resumable output
``DIR/relaxed.extxyz`` + ``DIR/relaxed.summary.json``; an interrupted run is simply started
again), then scored against the reference relaxed structures, frame ``k`` of the reference
file against frame ``k`` of the initial file:

- ADwT (always), energy MAE and EwT (when the reference frames hold energies), FbT and AFbT
  (with ``--oracle``: the oracle's forces on the ML-relaxed structures);
- ``DIR/metrics.json`` (written atomically) and ``DIR/is2rs.png`` (DwT and FbT curves; needs
  matplotlib, the ``plot`` extra).

Defaults follow the EquiformerV2 paper's IS2RS/IS2RE relaxations: L-BFGS, at most 200 steps,
``fmax`` 0.02 eV/Å.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from equicat.cli import relax as relax_cli
from equicat.cli.common import add_model_arguments

__all__ = ["add_parser", "run"]

ORACLES = ("emt",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "is2rs",
        help="IS2RS/IS2RE evaluation: relax, then ADwT, energy MAE, EwT, AFbT",
        description="Relax initial structures with a model and score them against reference "
        "relaxed structures (OC20's IS2RS/IS2RE metrics). Writes DIR/relaxed.extxyz "
        "(resumable), DIR/metrics.json and DIR/is2rs.png.",
    )
    add_model_arguments(p)
    p.add_argument("--reference", required=True, type=Path,
                   help="reference relaxed structures, same frames in the same order")  # fmt: skip
    p.add_argument("--oracle", choices=ORACLES, default=None,
                   help="calculator for FbT/AFbT on the relaxed structures")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="output directory")
    relax_cli.add_optimizer_arguments(p, steps=200)


def _oracle(name: str | None) -> Any:
    if name is None:
        return None
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    raise ValueError(f"unknown oracle {name!r}; use one of {ORACLES}")


def _energy(atoms: Any) -> float | None:
    """eV, a frame's energy (extxyz ``energy`` or ``info['energy']``), None if absent."""
    if atoms.calc is not None and "energy" in atoms.calc.results:
        return float(atoms.calc.results["energy"])
    value = atoms.info.get("energy")
    return None if value is None else float(value)


def _relaxed_in_order(path: Path, names: list[str]) -> list[Any]:
    import ase.io

    frames = ase.io.read(path, ":")
    by_source = {a.info["source"]: a for a in frames}
    missing = [n for n in names if n not in by_source]
    if missing:
        raise ValueError(f"{path} lacks relaxed frames for {missing[:3]}; run again to resume")
    return [by_source[n] for n in names]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _plot(path: Path, metrics: Any) -> bool:
    """DwT (and FbT) curves to ``path``; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import numpy as np

    from equicat.relax.metrics import ADWT_THRESHOLDS, AFBT_THRESHOLDS

    n = 2 if metrics.fbt_curve is not None else 1
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(ADWT_THRESHOLDS, 100 * np.asarray(metrics.dwt))
    ax.set(xlabel="threshold (Å)", ylabel="DwT (%)", ylim=(0, 100),
           title=f"ADwT {100 * metrics.adwt:.1f}% (n={metrics.count})")  # fmt: skip
    if metrics.fbt_curve is not None:
        ax = axes[0, 1]
        ax.plot(AFBT_THRESHOLDS, 100 * np.asarray(metrics.fbt_curve))
        ax.set(xlabel="threshold (eV/Å)", ylabel="FbT (%)", ylim=(0, 100),
               title=f"AFbT {100 * metrics.afbt:.1f}%")  # fmt: skip
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat is2rs``."""
    from equicat.cli.common import read_structures
    from equicat.relax.metrics import score

    frames, names = read_structures(args.structures)
    reference, _ = read_structures([str(args.reference)])
    if len(reference) != len(frames):
        raise ValueError(
            f"{args.reference} holds {len(reference)} frames but the initial structures are "
            f"{len(frames)}; frame k of each must be the same system"
        )
    oracle = _oracle(args.oracle)
    args.out.mkdir(parents=True, exist_ok=True)
    relaxed_path = args.out / "relaxed.extxyz"
    relax_cli.run(argparse.Namespace(**{**vars(args), "out": relaxed_path}))
    relaxed = _relaxed_in_order(relaxed_path, names)
    ref_energy = [_energy(a) for a in reference]
    energies = [_energy(a) for a in relaxed]
    has_energy = all(e is not None for e in ref_energy)
    metrics = score(
        relaxed, reference, energies if has_energy else None,
        ref_energy if has_energy else None, oracle,
    )  # fmt: skip
    summary = json.loads((args.out / "relaxed.summary.json").read_text())
    data = {
        "initial": args.structures, "reference": str(args.reference),
        "checkpoint": str(args.checkpoint), "oracle": args.oracle,
        "optimizer": args.optimizer, "fmax": args.fmax, "steps": args.steps,
        "converged": summary["converged"], "total": summary["total"],
        **metrics.to_dict(),
    }  # fmt: skip
    _write_json(args.out / "metrics.json", data)
    plotted = _plot(args.out / "is2rs.png", metrics)
    line = f"equicat is2rs: n={metrics.count} ADwT={100 * metrics.adwt:.2f}%"
    if metrics.energy_mae is not None:
        line += f" energy MAE={metrics.energy_mae:.4f} eV EwT={100 * metrics.ewt:.2f}%"
    if metrics.afbt is not None:
        line += f" FbT(0.05)={100 * metrics.fbt:.2f}% AFbT={100 * metrics.afbt:.2f}%"
    print(f"{line} -> {args.out / 'metrics.json'}", file=sys.stdout)
    if not plotted:
        print("equicat is2rs: matplotlib missing, no plot (pip install matplotlib)")
    return 0
