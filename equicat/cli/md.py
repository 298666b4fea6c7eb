"""``equicat md``: batched molecular dynamics of structure files, resumable.

Every frame of the input files is one system; all run together. Outputs beside ``--out``
``TRAJ.h5``: ``TRAJ.log.csv`` (step, time, energies, temperature, pressure per system) and
``TRAJ.summary.json`` (settings, drift report); ``--extxyz`` also exports the frames at the end.
An existing ``TRAJ.h5`` written with the same settings is continued from its last complete
frame (positions, velocities, step, thermostat state, random generator state), so a killed run
is resumed by running the same command again; ``--steps`` is the total.
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

__all__ = ["add_parser", "run"]

# settings that must agree between a trajectory and a run that continues it
_RESUME_KEYS = ("ensemble", "timestep", "temperature", "friction", "taut", "pressure", "taup",
                "compressibility", "seed")  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "md",
        help="molecular dynamics (NVE, Langevin/Bussi NVT, NPT), batched and resumable",
        description="Run MD on every structure of the input files at once. Writes an HDF5 "
        "trajectory (readable while running), a CSV log and a summary with the energy drift. "
        "Run the same command again to resume an interrupted run.",
    )
    add_model_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="trajectory file, e.g. traj.h5")
    p.add_argument("--ensemble", default="nve", choices=["nve", "nvt-langevin", "nvt-bussi", "npt"])
    p.add_argument(
        "--temperature",
        type=float,
        default=300.0,
        help="K: initial velocities and thermostat target (300)",
    )
    p.add_argument("--timestep", type=float, default=1.0, help="fs (1.0)")
    p.add_argument("--steps", type=int, required=True, help="total number of steps")
    p.add_argument("--friction", type=float, default=0.01, help="1/fs, Langevin (0.01)")
    p.add_argument("--taut", type=float, default=100.0, help="fs, Bussi thermostat (100)")
    p.add_argument("--pressure", type=float, default=0.0, help="GPa, NPT target (0)")
    p.add_argument("--taup", type=float, default=1000.0, help="fs, NPT barostat (1000)")
    p.add_argument("--compressibility", type=float, default=0.01, help="1/GPa, NPT (0.01)")
    p.add_argument("--log-interval", type=int, default=10, help="steps between log rows (10)")
    p.add_argument(
        "--traj-interval",
        type=int,
        default=None,
        help="steps between trajectory frames (default: --log-interval)",
    )
    p.add_argument(
        "--flush-interval", type=int, default=100, help="steps between trajectory flushes (100)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (velocities, thermostats)")
    p.add_argument("--skin", type=float, default=1.0, help="Å, neighbour-list skin (1.0)")
    p.add_argument(
        "--keep-velocities",
        action="store_true",
        help="start from the input's momenta instead of Maxwell-Boltzmann",
    )
    p.add_argument("--extxyz", type=Path, default=None, help="also export the frames here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")  # fmt: skip


def _config(args: argparse.Namespace) -> Any:
    from ase import units

    from equicat.md import MDConfig

    return MDConfig(
        ensemble=args.ensemble, timestep=args.timestep, temperature=args.temperature,
        friction=args.friction, taut=args.taut, pressure=args.pressure * units.GPa,
        taup=args.taup, compressibility=args.compressibility / units.GPa, skin=args.skin,
        seed=args.seed,
    )  # fmt: skip


def _paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(f"{out.stem}.log.csv"), out.with_name(f"{out.stem}.summary.json")


def _check_resume(saved: dict[str, Any], config: Any, sources: list[str], out: Path) -> None:
    """Refuse to continue a trajectory written with other settings or inputs."""
    import dataclasses

    now = dataclasses.asdict(config)
    for key in _RESUME_KEYS:
        old, new = saved["config"][key], now[key]
        same = old == new if isinstance(new, str) else abs(old - new) <= 1e-12 * max(1, abs(new))
        if not same:
            raise ValueError(
                f"{str(out)!r} was written with {key}={old!r}, this run asks for {new!r}; "
                "use the same settings to resume, or another --out"
            )
    if saved["metadata"].get("sources") != sources:
        raise ValueError(
            f"{str(out)!r} was written for the inputs {saved['metadata'].get('sources')}, not "
            f"{sources}; use the same inputs to resume, or another --out"
        )


def _summary(args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    from equicat.md.report import drift_report

    report = drift_report(args.out)
    keys = ("checkpoint", "ensemble", "temperature", "timestep", "steps", "friction", "taut",
            "pressure", "taup", "compressibility", "seed", "dtype", "log_interval")  # fmt: skip
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                if k in keys}  # fmt: skip
    return {"settings": settings, **extra, **report}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat md``."""
    from equicat.calculators import Predictor
    from equicat.calculators.potential import ModelPotential
    from equicat.md.hdf5 import H5Writer, read_frame, recover
    from equicat.md.report import CsvLog, write_extxyz
    from equicat.md.runner import init_from_atoms, restore, run_md

    if args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    config = _config(args)
    frames, names = read_structures(args.structures)
    log_path, summary_path = _paths(args.out)
    potential = ModelPotential.from_predictor(
        Predictor.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    )
    resumed_from = None
    if args.out.exists() and recover(args.out) == 0:
        args.out.unlink()  # killed before its first frame reached the disk: start afresh
    if args.out.exists():
        last = read_frame(args.out)
        _check_resume(last, config, names, args.out)
        state = restore(last, potential, config)
        resumed_from = state.step
        writer = H5Writer.append_to(args.out)
    else:
        state = init_from_atoms(frames, potential, config, args.keep_velocities)
        metadata = {"sources": names, "checkpoint": str(args.checkpoint), "dtype": args.dtype,
                    "conservative": potential.conservative}  # fmt: skip
        writer = H5Writer.create(args.out, state, metadata)
        writer.append(state)
        writer.flush()
    log = CsvLog.open(log_path, last_step=resumed_from)
    if resumed_from is None:
        log.append(state)
    start = time.perf_counter()
    try:
        state = run_md(
            state, potential, args.steps, writer=writer, log=log,
            traj_interval=args.traj_interval or args.log_interval, log_interval=args.log_interval,
            flush_interval=args.flush_interval, progress=not args.quiet,
        )  # fmt: skip
    finally:
        writer.close()
        log.close()
    extra = {
        "resumed_from_step": resumed_from, "wall_s_this_run": time.perf_counter() - start,
        "forward_calls_this_run": potential.calls, "device": str(potential.device),
        "energy_conserving_model": potential.conservative,
    }  # fmt: skip
    summary = _summary(args, extra)
    _write_json(summary_path, summary)
    if args.extxyz is not None:
        write_extxyz(args.out, args.extxyz)
    for s in summary["systems"]:
        print(
            f"equicat md: system {s['system']} ({s['natoms']} atoms): E_tot drift "
            f"{s['etot_drift_eV_per_atom_per_ps']:.3e} eV/atom/ps, conserved-quantity drift "
            f"{s['conserved_drift_eV_per_atom_per_ps']:.3e} eV/atom/ps, <T> (2nd half) "
            f"{s['temperature_mean_second_half_K']:.1f} K",
            file=sys.stdout,
        )
    print(f"equicat md: {state.step} steps -> {args.out}, {log_path}, {summary_path}")
    return 0
