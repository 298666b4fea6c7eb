"""``equicat relax``: batched relaxation of structure files, resumable.

Every structure gets an id, ``info["source"]`` = ``FILE@FRAME`` (``FILE`` alone for a
one-frame file). With ``--relax-cell`` the cells relax too (conservative models only) under
``--pressure`` (GPa, converted here to eV/Å³: 1 GPa = 1/160.2177 eV/Å³), and the output
frames carry the relaxed cells.

OUT is rewritten atomically (a temporary file, then a rename) each time
``--batch-size`` more structures have finished, and at the end; a rerun skips the
structures whose id is already in OUT, so an interrupted run loses at most one batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from equicat.cli.common import add_model_arguments, read_structures

__all__ = ["add_optimizer_arguments", "add_parser", "relax_options", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "relax",
        help="relax structures (batched L-BFGS or FIRE), resumable",
        description="Relax structures to a force threshold, many at once. Reads any format "
        "ASE reads; writes the relaxed structures (info: energy, converged, steps, max_force, "
        "source) to OUT and a summary to OUT's stem + .summary.json. Structures already in "
        "OUT are skipped, so an interrupted run can simply be started again.",
    )
    add_model_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="output file, e.g. relaxed.extxyz")
    add_optimizer_arguments(p, steps=300)


def add_optimizer_arguments(p: argparse.ArgumentParser, steps: int) -> None:
    """``--fmax``, ``--steps`` (default ``steps``), ``--optimizer`` ... ``--quiet``."""
    p.add_argument("--fmax", type=float, default=0.02, help="eV/Å force threshold (0.02)")
    p.add_argument("--steps", type=int, default=steps, help=f"most steps per structure ({steps})")
    p.add_argument("--optimizer", default="lbfgs", choices=["lbfgs", "fire"])
    p.add_argument("--batch-size", type=int, default=16, help="structures relaxed together")
    p.add_argument("--maxstep", type=float, default=None,
                   help="Å per atom per step (default: 0.04 lbfgs, 0.2 fire)")  # fmt: skip
    p.add_argument("--relax-cell", action="store_true",
                   help="relax the cell too (Frechet cell filter, like ASE's FrechetCellFilter); "
                   "needs a conservative model and periodic structures")  # fmt: skip
    p.add_argument("--pressure", type=float, default=0.0,
                   help="GPa, external pressure of --relax-cell (default 0)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def relax_options(args: argparse.Namespace) -> dict[str, Any]:
    """Optimizer options from ``--maxstep``, ``--relax-cell`` and ``--pressure`` (GPa)."""
    from equicat.relax.cell import GPA

    options: dict[str, Any] = {} if args.maxstep is None else {"maxstep": args.maxstep}
    if args.relax_cell:
        options.update(relax_cell=True, pressure=args.pressure * GPA)
    elif args.pressure != 0.0:
        raise ValueError("--pressure applies to cell relaxation only; add --relax-cell")
    return options


def _previous(out: Path) -> list[Any]:
    """Frames already relaxed into OUT (empty if there is no OUT yet)."""
    import ase.io

    if not out.exists():
        return []
    try:
        frames = ase.io.read(out, ":")
    except Exception as err:
        raise ValueError(
            f"cannot read the existing output {str(out)!r} to resume ({err}); move it away "
            "to start afresh"
        ) from err
    frames = frames if isinstance(frames, list) else [frames]
    for k, atoms in enumerate(frames):
        if "source" not in atoms.info:
            raise ValueError(
                f"frame {k} of the existing output {str(out)!r} has no info['source'], so it "
                "was not written by equicat relax; choose another --out"
            )
    return frames


def _energy(atoms: Any) -> float:
    if "energy" in atoms.info:
        return float(atoms.info["energy"])
    return float(atoms.calc.results["energy"]) if atoms.calc is not None else float("nan")


def _write(out: Path, frames: list[Any], summary: dict[str, Any]) -> None:
    """Write OUT and its summary, each atomically (temporary file + rename)."""
    import ase.io

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    ase.io.write(tmp, frames)
    os.replace(tmp, out)
    rows = [
        {
            "source": a.info["source"],
            "formula": a.get_chemical_formula(),
            "natoms": len(a),
            "energy": _energy(a),
            "converged": bool(a.info.get("converged", False)),
            "steps": int(a.info.get("steps", 0)),
            "max_force": float(a.info.get("max_force", float("nan"))),
        }
        for a in frames
    ]
    summary = {
        **summary,
        "total": len(rows),
        "converged": sum(r["converged"] for r in rows),
        "structures": rows,
    }
    path = out.with_name(f"{out.stem}.summary.json")
    tmp_json = path.with_name(f".{path.name}.partial")
    tmp_json.write_text(json.dumps(summary, indent=1))
    os.replace(tmp_json, path)


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat relax``."""
    from equicat.calculators import Predictor
    from equicat.relax import ModelPotential, relax_iter, relaxed_atoms

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    frames, names = read_structures(args.structures)
    previous = _previous(args.out)
    done = {a.info["source"] for a in previous}
    todo = [k for k, name in enumerate(names) if name not in done]
    rank = {name: k for k, name in enumerate(names)}
    settings = {
        "checkpoint": str(args.checkpoint), "optimizer": args.optimizer, "fmax": args.fmax,
        "steps": args.steps, "batch_size": args.batch_size, "dtype": args.dtype,
        "skipped": len(frames) - len(todo), "relaxed_this_run": len(todo),
        "relax_cell": args.relax_cell, "pressure_gpa": args.pressure,
    }  # fmt: skip
    if not todo:
        print(f"equicat relax: all {len(frames)} structures are already in {args.out}")
        _write(args.out, previous, {**settings, "wall_s": 0.0, "forward_calls": 0})
        return 0
    potential = ModelPotential.from_predictor(
        Predictor.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    )
    options = relax_options(args)
    finished = list(previous)
    start, pending = time.perf_counter(), 0

    def flush() -> None:
        finished.sort(key=lambda a: rank.get(a.info["source"], -1))
        extra = {"wall_s": time.perf_counter() - start, "forward_calls": potential.calls}
        _write(args.out, finished, {**settings, **extra, "device": str(potential.device)})

    from tqdm import tqdm

    with tqdm(total=len(todo), desc="relax", unit="structure", disable=args.quiet) as bar:
        for res in relax_iter(
            [frames[k] for k in todo], potential, optimizer=args.optimizer,
            batch_size=args.batch_size, fmax=args.fmax, steps=args.steps, **options,
        ):  # fmt: skip
            k = todo[res.index]
            atoms = relaxed_atoms(frames[k], res)
            atoms.info["source"] = names[k]
            finished.append(atoms)
            bar.update(1)
            pending += 1
            if pending >= args.batch_size:
                flush()
                pending = 0
    flush()
    n_conv = sum(bool(a.info.get("converged", False)) for a in finished)
    print(
        f"equicat relax: {len(todo)} relaxed, {len(frames) - len(todo)} skipped; "
        f"{n_conv}/{len(finished)} converged -> {args.out}",
        file=sys.stdout,
    )
    return 0
