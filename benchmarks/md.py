"""MD throughput: ASE's VelocityVerlet one structure at a time vs equicat's batched NVE.

Both sides run ``--steps`` velocity Verlet steps of ``--timestep`` fs from the same positions
and momenta (Maxwell-Boltzmann at 300 K, fixed seed) with the same model:

- ``ase``: ``atoms.calc = EquiCatCalculator(predictor)`` and ``ase.md.verlet.VelocityVerlet``
  per structure, one after the other (the one-structure path);
- ``equicat``: :func:`equicat.md.step` on ``--batch-size`` systems held as one graph.

Run from the repository root::

    python benchmarks/md.py --n 8 --batch-size 1 8 --steps 20 --threads 1
    python benchmarks/md.py --checkpoint oc-emt-eqv2-s --device cuda --n 64 --batch-size 64

Structures: Cu(111) 2x2x3 + CO slabs (14 atoms, 6 Å vacuum) rattled with seeds 0..n-1.
Columns (also written to ``OUT/md.json``): ``path``, ``batch`` (systems per forward pass),
``wall s`` (all systems, all steps, after a warm-up call), ``calls`` (forward passes),
``sys-steps/s`` (system-steps per second), ``|dr| max`` (Å, largest position difference to the
ase path after the last step), ``speed-up`` (ase wall time / this row's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.md.verlet import VelocityVerlet

from equicat.calculators import EquiCatCalculator, Predictor
from equicat.calculators.potential import ModelPotential
from equicat.md import MDConfig, step
from equicat.md.runner import init_from_atoms


def log(msg: str) -> None:
    print(f"[md] {msg}", file=sys.stderr, flush=True)


def structures(n: int) -> list:
    from ase.build import add_adsorbate, fcc111, molecule

    out = []
    for seed in range(n):
        slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
        add_adsorbate(slab, molecule("CO"), 1.9, "fcc")
        slab.rattle(0.03, seed=seed)
        rng = np.random.default_rng(seed)
        slab.set_momenta(
            rng.standard_normal((len(slab), 3))
            * np.sqrt(slab.get_masses() * units.kB * 300)[:, None]
        )
        slab.info.pop("adsorbate_info", None)
        out.append(slab)
    return out


def run_ase(frames, pred, steps: int, dt: float) -> tuple[float, list[np.ndarray]]:
    calc = EquiCatCalculator(pred)
    final, start = [], time.perf_counter()
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        VelocityVerlet(atoms, timestep=dt * units.fs).run(steps)
        final.append(atoms.get_positions())
    return time.perf_counter() - start, final


def run_ours(frames, pred, steps: int, dt: float, batch: int) -> tuple[float, int, list]:
    pot = ModelPotential.from_predictor(pred)
    final, start = [], time.perf_counter()
    for lo in range(0, len(frames), batch):
        chunk = frames[lo : lo + batch]
        state = init_from_atoms(chunk, pot, MDConfig(timestep=dt), keep_velocities=True)
        for _ in range(steps):
            state = step(state, pot)
        pos = state.graph.positions.detach().double().cpu().numpy()
        bounds = np.cumsum([0] + [len(a) for a in chunk])
        final += [pos[bounds[k] : bounds[k + 1]] for k in range(len(chunk))]
    return time.perf_counter() - start, pot.calls, final


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--batch-size", type=int, nargs="+", default=[1, 8])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--timestep", type=float, default=1.0)
    p.add_argument("--checkpoint", default="oc-emt-eqv2-s")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("runs/bench_md"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pred = Predictor.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    frames = structures(args.n)
    pred.predict(frames[:1])  # warm-up
    log(f"ase path: {args.n} structures x {args.steps} steps")
    t_ase, ref = run_ase(frames, pred, args.steps, args.timestep)
    calls_ase = args.n * (args.steps + 1)
    rows = [dict(path="ase", batch=1, wall_s=t_ase, calls=calls_ase, dr_max=0.0)]
    for b in args.batch_size:
        log(f"equicat batched NVE, batch {b}")
        t, calls, final = run_ours(frames, pred, args.steps, args.timestep, b)
        dr = max(float(np.abs(f - r).max()) for f, r in zip(final, ref, strict=True))
        rows.append(dict(path="equicat", batch=b, wall_s=t, calls=calls, dr_max=dr))
    print(f"{'path':8} {'batch':>5} {'wall s':>8} {'calls':>6} {'sys-steps/s':>12} "
          f"{'|dr| max':>9} {'speed-up':>8}")  # fmt: skip
    for r in rows:
        r["sys_steps_per_s"] = args.n * args.steps / r["wall_s"]
        r["speed_up"] = t_ase / r["wall_s"]
        print(f"{r['path']:8} {r['batch']:5d} {r['wall_s']:8.2f} {r['calls']:6d} "
              f"{r['sys_steps_per_s']:12.2f} {r['dr_max']:9.1e} {r['speed_up']:8.2f}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    meta = dict(vars(args), out=str(args.out), load=os.getloadavg(), torch=torch.__version__)
    (args.out / "md.json").write_text(json.dumps({"settings": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
