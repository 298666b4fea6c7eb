"""``equicat evaluate``: OC20 metrics of a checkpoint on labelled data, as JSON and parity PNGs.

Tasks:

- ``s2ef``: energy and forces of every frame against its labels (forces on free atoms, as
  OC20 scores them, unless ``--all-atoms``);
- ``is2re``: for each system (``info["system_id"]``, as ``equicat datagen`` writes), its
  earliest relaxation frame is relaxed with the model and the model's relaxed energy compared
  with the label of its last relaxation frame (the oracle's relaxed energy). OC-EMT drops
  frames with huge forces, so the earliest kept frame may come a few oracle steps in;
- ``qm9``: the model's energy against one QM9 target held in each frame's ``info`` (the
  frames :mod:`equicat.data.qm9` loads carry them).

Each data file is one evaluation set; ``OUT/metrics.json`` holds every set's metrics and
``OUT/parity_<set>.png`` its parity plot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from equicat.checkpoints.registry import DEFAULT

__all__ = ["add_parser", "run", "evaluate_files"]

TASKS = ("s2ef", "is2re", "qm9")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="OC20 metrics (energy/force MAE, cosine, EwT, EFwT) of a checkpoint",
        description="Evaluate a checkpoint on labelled data files (extxyz as `equicat datagen` "
        "writes). Writes OUT/metrics.json and a parity plot OUT/parity_<set>.png per file.",
    )
    p.add_argument("--checkpoint", default=DEFAULT, help=f"file or shipped name ({DEFAULT})")
    p.add_argument(
        "--data", nargs="+", required=True,
        help="labelled data file(s), one set each; a datagen directory means its val*.extxyz",
    )  # fmt: skip
    p.add_argument("--task", default="s2ef", choices=TASKS)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--batch-size", type=int, default=16, help="structures per forward pass")
    p.add_argument("--all-atoms", action="store_true", help="s2ef: score fixed atoms' forces too")
    p.add_argument("--fmax", type=float, default=0.05, help="is2re: relaxation criterion, eV/Å")
    p.add_argument("--steps", type=int, default=300, help="is2re: most relaxation steps")
    p.add_argument("--target", default="U0", help="qm9: the target the model's energy predicts")
    p.add_argument("--no-plot", action="store_true", help="metrics only, no PNG")


def _free_mask(atoms: Any) -> np.ndarray:
    """[n] bool, atoms not held by ``FixAtoms``."""
    free = np.ones(len(atoms), bool)
    for c in atoms.constraints:
        if type(c).__name__ == "FixAtoms":
            free[c.get_indices()] = False
    return free


def _s2ef(predictor: Any, frames: list, args: argparse.Namespace) -> tuple[dict, list]:
    from equicat.data.dataset import frame_labels
    from equicat.train.metrics import s2ef_metrics
    from equicat.train.plots import Panel

    labels = [frame_labels(a, f"frame {a.info.get('source', i)}") for i, a in enumerate(frames)]
    preds = predictor.predict(frames, batch_size=args.batch_size)
    natoms = np.array([len(a) for a in frames])
    energy = np.array([p["energy"] for p in preds])  # [B] eV
    energy_true = np.array([e for e, _ in labels])
    forces = np.concatenate([p["forces"] for p in preds])  # [N, 3] eV/Å
    forces_true = np.concatenate([f for _, f in labels])
    scored = None if args.all_atoms else np.concatenate([_free_mask(a) for a in frames])
    metrics = s2ef_metrics(energy, energy_true, natoms, forces, forces_true, scored)
    mask = slice(None) if scored is None else scored
    metrics["baseline_zero_force_mae"] = float(np.abs(forces_true[mask]).mean())
    metrics["forces_scored_on"] = "all atoms" if scored is None else "free atoms"
    panels = [
        Panel("energy per atom", energy / natoms, energy_true / natoms, "eV/atom",
              metrics["energy_mae_per_atom"]),
        Panel("force components", forces[mask].ravel(), forces_true[mask].ravel(), "eV/Å",
              metrics["force_mae"]),
    ]  # fmt: skip
    return metrics, panels


def _is2re_pairs(frames: list) -> tuple[list, np.ndarray]:
    """Earliest relaxation frame of each system and the label of its last one (eV)."""
    from equicat.data.dataset import frame_labels

    systems: dict[int, list] = {}
    for a in frames:
        if a.info.get("frame_kind", "relax") == "relax" and "system_id" in a.info:
            systems.setdefault(int(a.info["system_id"]), []).append(a)
    if not systems:
        raise ValueError(
            "is2re needs relaxation frames with info['system_id'] and info['frame_index'] "
            "(as `equicat datagen oc-emt` writes); none found"
        )
    initial, target = [], []
    for _, group in sorted(systems.items()):
        group = sorted(group, key=lambda a: int(a.info.get("frame_index", 0)))
        initial.append(group[0].copy())
        target.append(frame_labels(group[-1])[0])
    return initial, np.array(target)


def _is2re(predictor: Any, frames: list, args: argparse.Namespace) -> tuple[dict, list]:
    from equicat.relax import relax_many
    from equicat.train.metrics import is2re_metrics
    from equicat.train.plots import Panel

    initial, target = _is2re_pairs(frames)
    results = sorted(
        relax_many(initial, predictor, batch_size=args.batch_size, fmax=args.fmax,
                   steps=args.steps),
        key=lambda r: r.index,
    )  # fmt: skip
    energy = np.array([r.energy for r in results])
    natoms = np.array([len(a) for a in initial])
    metrics = is2re_metrics(energy, target, natoms)
    metrics["relax_converged"] = float(np.mean([r.converged for r in results]))
    metrics["relax_mean_steps"] = float(np.mean([r.steps for r in results]))
    panels = [Panel("relaxed energy", energy, target, "eV", metrics["energy_mae"])]
    return metrics, panels


def _qm9(predictor: Any, frames: list, args: argparse.Namespace) -> tuple[dict, list]:
    from equicat.train.metrics import target_metrics
    from equicat.train.plots import Panel

    missing = [i for i, a in enumerate(frames) if args.target not in a.info]
    if missing:
        raise ValueError(
            f"frame {missing[0]} has no {args.target!r} in its info; qm9 frames must carry "
            "the target (choose it with --target)"
        )
    preds = predictor.predict(frames, batch_size=args.batch_size)
    energy = np.array([p["energy"] for p in preds])
    ref = np.array([float(a.info[args.target]) for a in frames])
    metrics = target_metrics({args.target: energy}, {args.target: ref})
    panels = [Panel(args.target, energy, ref, "eV", metrics[args.target]["mae"])]
    return metrics, panels


def _expand(paths: list[str]) -> list[str]:
    """Files as given; a directory (``equicat datagen`` output) stands for its ``val*.extxyz``."""
    files: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            found = sorted(str(p) for p in Path(path).glob("val*.extxyz"))
            if not found:
                raise FileNotFoundError(f"directory {path!r} holds no val*.extxyz file")
            files += found
        else:
            files.append(path)
    return files


def evaluate_files(args: argparse.Namespace) -> dict[str, Any]:
    """Metrics of every ``args.data`` file; writes ``metrics.json`` and the plots."""
    from equicat.calculators import Predictor
    from equicat.data.dataset import atomic_open, read_frames

    task = {"s2ef": _s2ef, "is2re": _is2re, "qm9": _qm9}[args.task]
    predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
    out = Path(args.out)
    report: dict[str, Any] = {"task": args.task, "checkpoint": str(args.checkpoint), "sets": {}}
    files = _expand(args.data)
    stems = [Path(p).stem for p in files]
    for path, stem in zip(files, stems, strict=True):
        name = stem if stems.count(stem) == 1 else str(path)
        metrics, panels = task(predictor, read_frames(path), args)
        report["sets"][name] = dict(metrics, data=str(path))
        if not args.no_plot:
            from equicat.train.plots import parity_plot

            png = out / f"parity_{Path(name).stem}.png"
            parity_plot(png, panels, title=f"{args.checkpoint} on {path} ({args.task})")
            report["sets"][name]["plot"] = str(png)
    with atomic_open(out / "metrics.json") as fh:
        json.dump(report, fh, indent=1)
        fh.write("\n")
    return report


def _summary(task: str, metrics: dict[str, Any]) -> str:
    if task == "s2ef":
        return (
            f"energy MAE {metrics['energy_mae']:.4f} eV "
            f"({metrics['energy_mae_per_atom'] * 1e3:.2f} meV/atom), force MAE "
            f"{metrics['force_mae']:.4f} eV/Å (zero: {metrics['baseline_zero_force_mae']:.4f}), "
            f"cos {metrics['force_cosine']:.3f}, EwT {metrics['energy_within_threshold']:.3f}, "
            f"EFwT {metrics['energy_forces_within_threshold']:.3f}"
        )
    if task == "is2re":
        return (
            f"energy MAE {metrics['energy_mae']:.4f} eV, EwT "
            f"{metrics['energy_within_threshold']:.3f} ({metrics['structures']} systems)"
        )
    return ", ".join(f"{k} MAE {v['mae']:.4g}" for k, v in metrics.items() if isinstance(v, dict))


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat evaluate``."""
    report = evaluate_files(args)
    for name, metrics in report["sets"].items():
        print(f"{name}: {_summary(args.task, metrics)}")
    print(f"metrics: {Path(args.out) / 'metrics.json'}")
    return 0
