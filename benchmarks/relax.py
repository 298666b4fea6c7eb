"""Relaxation throughput: ASE's LBFGS one structure at a time vs equicat's batched L-BFGS.

Both sides relax the same OC20-like slabs with the same model, the same L-BFGS settings
(maxstep 0.04 Å, memory 50, damping 1, alpha 70) and the same force threshold:

- ``ase``: ``atoms.calc = EquiCatCalculator(predictor)`` and ``ase.optimize.LBFGS`` per
  structure, one after the other (the one-structure path);
- ``equicat``: :func:`equicat.relax.relax_many` with ``--batch-size`` systems per forward pass
  and the queue refilling the batch as systems converge.

Run from the repository root::

    python benchmarks/relax.py --n 16 --batch-size 1 4 16 --threads 1  # tiny random model
    python benchmarks/relax.py --checkpoint path/to/model.pt --device cuda

Structures (``--n`` of them, fixed seed): 3x3x3 fcc(111)/(100) slabs of Cu, Pt, Ag, Pd, Au or Ni
(27 atoms, 8 Å vacuum) with one of CO, OH, O, N, H, NH2 on a hollow/bridge/top site, OC20
tags (0 subsurface, 1 surface, 2 adsorbate), the two bottom layers fixed, rattled by 0.05 Å.

Model: ``--checkpoint`` if given, else a seeded EquiformerV2 (``--size tiny``: 1 block, lmax 2,
8 channels; ``small``: the config defaults) with conservative forces, a polynomial envelope,
no neighbour cap, ``energy_std=300`` and weights perturbed so that forces are not tiny.

Columns (the same rows go to ``OUT/relax.json`` with per-structure results):

- ``path``: ``ase``; ``equicat`` (our default L-BFGS, which skips curvature pairs with
  ``y . s <= 0``); ``eq-ase`` (ours with ``min_curvature=-inf``: every pair stored, ase's
  rule, so the same algorithm as the ase row and only the batching differs).
- ``batch``: systems per forward pass (1 for ase).
- ``wall s``: wall time of all relaxations (after one warm-up call each side).
- ``calls``: model forward calls; ``relax/s``: structures per second.
- ``conv``: converged structures; ``steps``: mean optimizer steps per structure.
- ``|dE| max`` / ``|dE| med``: final-energy difference to the ase path, eV (equicat row).
- ``|dr| max``: largest final-position difference to the ase path, Å (equicat row).
- ``speed-up``: ase wall time / this row's wall time.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc100, fcc111, molecule
from ase.constraints import FixAtoms
from ase.optimize import LBFGS

from equicat.calculators import EquiCatCalculator, Predictor
from equicat.models import build
from equicat.relax import ModelPotential, relax_many

METALS = ("Cu", "Pt", "Ag", "Pd", "Au", "Ni")
ADSORBATES = ("CO", "OH", "O", "N", "H", "NH2")
SITES = {"fcc111": ("fcc", "hcp", "ontop", "bridge"), "fcc100": ("hollow", "ontop", "bridge")}
LBFGS_SETTINGS = dict(maxstep=0.04, memory=50, damping=1.0, alpha=70.0)
# equicat rows: the default (curvature pairs with y.s <= 0 skipped) and ase's own rule
VARIANTS = {"equicat": 0.0, "eq-ase": -float("inf")}
SIZES = {
    "tiny": dict(
        num_layers=1, lmax=2, mmax=1, sphere_channels=8, attn_hidden_channels=8, num_heads=2,
        attn_alpha_channels=4, attn_value_channels=2, ffn_hidden_channels=8, edge_channels=8,
        num_distance_basis=32, grid_resolution=8, cutoff=5.0,
    ),
    "small": dict(cutoff=6.0),
}  # fmt: skip


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(f"[relax] {msg}", file=sys.stderr, flush=True)


def build_structures(n: int, seed: int = 0) -> list[Atoms]:
    """``n`` OC20-like slab + adsorbate structures (see the module docstring)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        metal = METALS[k % len(METALS)]
        facet = "fcc111" if k % 2 == 0 else "fcc100"
        maker = fcc111 if facet == "fcc111" else fcc100
        slab = maker(metal, size=(3, 3, 3), vacuum=8.0)
        layer = slab.get_tags()  # ase: 1 = top layer, 3 = bottom
        ads = ADSORBATES[(k // 2) % len(ADSORBATES)]
        site = SITES[facet][int(rng.integers(len(SITES[facet])))]
        add_adsorbate(slab, molecule(ads) if len(ads) > 1 else Atoms(ads), 1.8, site)
        tags = np.concatenate([np.where(layer == 1, 1, 0), np.full(len(slab) - len(layer), 2)])
        slab.set_tags(tags)
        slab.set_constraint(FixAtoms(indices=np.nonzero(layer >= 2)[0]))  # two bottom layers
        slab.rattle(0.05, seed=int(rng.integers(1 << 30)))
        slab.info = {"name": f"{metal}{facet[3:]}+{ads}@{site}"}
        frames.append(slab)
    return frames


def make_predictor(args: argparse.Namespace) -> Predictor:
    """The checkpoint's model, or a seeded random conservative EquiformerV2."""
    if args.checkpoint:
        return Predictor.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    torch.manual_seed(0)
    model = build(
        "equiformer_v2", forces="conservative", envelope="polynomial", max_neighbors=None,
        energy_std=300.0, **SIZES[args.size],
    )  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return Predictor(model, device=args.device, dtype=args.dtype)


class CallCounter:
    """Counts forward calls of a module (a pre-hook)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = 0
        module.register_forward_pre_hook(self._hook)

    def _hook(self, *_: object) -> None:
        self.calls += 1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_ase(pred: Predictor, frames: list[Atoms], fmax: float, steps: int) -> dict:
    """ASE LBFGS on EquiCatCalculator, one structure after the other."""
    counter = CallCounter(pred.model)
    pred.predict(frames[0])  # warm-up
    counter.calls = 0
    results = []
    _sync(pred.device)
    start = time.perf_counter()
    for k, atoms in enumerate(frames):
        atoms = atoms.copy()
        atoms.calc = EquiCatCalculator(pred)
        opt = LBFGS(atoms, logfile=None, **LBFGS_SETTINGS)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        results.append(
            dict(energy=float(atoms.get_potential_energy()), steps=int(opt.nsteps),
                 converged=converged, positions=atoms.positions.copy())
        )  # fmt: skip
        log(f"ase {k + 1}/{len(frames)}: {opt.nsteps} steps, converged={converged}")
    _sync(pred.device)
    return dict(wall=time.perf_counter() - start, calls=counter.calls, results=results)


def run_ours(
    pred: Predictor, frames: list[Atoms], fmax: float, steps: int, batch: int, curvature: float
) -> dict:
    """equicat's batched L-BFGS with the refilling queue."""
    potential = ModelPotential.from_predictor(pred)
    potential(potential.graph(frames[:batch]))  # warm-up
    potential.calls = 0
    _sync(pred.device)
    start = time.perf_counter()
    out = relax_many(
        frames, potential, batch_size=batch, optimizer="lbfgs", fmax=fmax, steps=steps,
        min_curvature=curvature, **LBFGS_SETTINGS,
    )  # fmt: skip
    _sync(pred.device)
    wall = time.perf_counter() - start
    results = [
        dict(energy=r.energy, steps=r.steps, converged=r.converged, positions=r.positions)
        for r in out
    ]
    return dict(wall=wall, calls=potential.calls, results=results)


@dataclass
class Row:
    """One line of the table."""

    path: str
    batch: int
    structures: int
    wall_s: float
    calls: int
    relax_per_s: float
    converged: int
    mean_steps: float
    dE_max: float | None = None
    dE_median: float | None = None
    dr_max: float | None = None
    speedup: float | None = None


def summarize(name: str, batch: int, run: dict, ref: dict | None) -> Row:
    """Table row of one path (differences against ``ref``, the ase path)."""
    res = run["results"]
    row = Row(
        path=name, batch=batch, structures=len(res), wall_s=run["wall"], calls=run["calls"],
        relax_per_s=len(res) / run["wall"], converged=sum(r["converged"] for r in res),
        mean_steps=float(np.mean([r["steps"] for r in res])),
    )  # fmt: skip
    if ref is not None:
        de = [abs(a["energy"] - b["energy"]) for a, b in zip(res, ref["results"], strict=True)]
        dr = [
            float(np.linalg.norm(a["positions"] - b["positions"], axis=1).max())
            for a, b in zip(res, ref["results"], strict=True)
        ]
        row.dE_max, row.dE_median, row.dr_max = max(de), float(np.median(de)), max(dr)
        row.speedup = ref["wall"] / run["wall"]
    return row


def format_table(rows: list[Row]) -> str:
    """Fixed-width text table."""
    head = (
        f"{'path':<8} {'batch':>5} {'n':>4} {'wall s':>8} {'calls':>6} {'relax/s':>8} "
        f"{'conv':>5} {'steps':>6} {'|dE| max':>9} {'|dE| med':>9} {'|dr| max':>9} {'speed-up':>8}"
    )

    def opt(v: float | None, fmt: str) -> str:
        return f"{'-':>9}" if v is None else format(v, fmt)

    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.path:<8} {r.batch:>5} {r.structures:>4} {r.wall_s:>8.2f} {r.calls:>6} "
            f"{r.relax_per_s:>8.3f} {r.converged:>5} {r.mean_steps:>6.1f} "
            f"{opt(r.dE_max, '9.2e')} {opt(r.dE_median, '9.2e')} {opt(r.dr_max, '9.2e')} "
            f"{'-' if r.speedup is None else format(r.speedup, '.2f') + 'x':>8}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=16, help="structures")
    p.add_argument("--batch-size", type=int, nargs="+", default=[1, 16], help="equicat batches")
    p.add_argument("--fmax", type=float, default=0.02, help="eV/Å (both paths)")
    p.add_argument("--steps", type=int, default=300, help="most steps per structure")
    p.add_argument("--checkpoint", default=None, help="model checkpoint (default: random model)")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny", help="random model size")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path("runs/bench_relax"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run both paths, print the table, write OUT/relax.json."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    frames = build_structures(args.n)
    pred = make_predictor(args)
    described = f"{type(pred.model).__name__}({pred.model.extra_repr()})"
    log(f"{len(frames)} structures, {sum(len(f) for f in frames)} atoms; {described}")
    ase_run = run_ase(pred, frames, args.fmax, args.steps)
    rows = [summarize("ase", 1, ase_run, None)]
    runs = {"ase": ase_run}
    for name, curvature in VARIANTS.items():
        for batch in args.batch_size:
            log(f"{name} batch {batch}")
            ours = run_ours(pred, frames, args.fmax, args.steps, batch, curvature)
            rows.append(summarize(name, batch, ours, ase_run))
            runs[f"{name}_b{batch}"] = ours
    print(format_table(rows))
    per_structure = [
        {"name": f.info["name"], "natoms": len(f)}
        | {
            f"{k}_{q}": run["results"][i][q]
            for k, run in runs.items()
            for q in ("energy", "steps", "converged")
        }
        for i, f in enumerate(frames)
    ]
    meta = {
        "n": args.n, "fmax": args.fmax, "steps": args.steps, "dtype": args.dtype,
        "device": str(pred.device), "threads": args.threads, "checkpoint": args.checkpoint,
        "size": None if args.checkpoint else args.size, "lbfgs": LBFGS_SETTINGS,
        "torch": torch.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "loadavg": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }  # fmt: skip
    path = args.out / "relax.json"
    path.write_text(
        json.dumps(
            {"meta": meta, "rows": [asdict(r) for r in rows], "structures": per_structure}, indent=1
        )  # fmt: skip
    )
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
