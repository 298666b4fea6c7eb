"""QM9 U0 with the L-set GCN for several degree sets under one fixed, small budget.

    python benchmarks/lset_qm9.py --out runs/lset_qm9 --threads 1

A small-budget reproduction of the L-set experiment of Lee, Galkin and Miret
("Deconstructing equivariant representations"): the same GCN is trained on QM9 U0 with
``L = [0,1,2]``, ``[0,3,4,5,6]`` and ``[0,1,2,3,4,5,6]``. Every model sees the same training
and validation molecules (``data.qm9`` subsets, one seed), the same number of optimizer steps,
batch size, width, learning rate and initialisation seed; only the degree set differs. Per
model, in ``OUT/L<digits>/``: the training run (``best.pt``, ``log.csv``,
``learning_curve.png``) and ``irreps/`` (``equicat analyze irreps`` on the validation
molecules, coloured by U0 atomization energy). ``OUT/results.json`` holds the table and the
settings; the table is printed: L set, parameters, validation U0 MAE (meV, EMA weights of the
best checkpoint, per molecule), wall seconds of training, and the paired difference of
per-molecule absolute errors from the first set's (mean ± standard error), with the MAE of
the element references alone as a baseline.

Rerunning with the same ``--out`` resumes unfinished runs and reuses finished ones.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from equicat.checkpoints import load
from equicat.data.dataset import write_frames
from equicat.train import TrainConfig, train
from equicat.train.config import QM9Source
from equicat.train.sources import qm9_frames

SETS = [[0, 1, 2], [0, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6]]


def _model(degrees: list[int], args: argparse.Namespace) -> dict:
    return {
        "degrees": degrees, "hidden_channels": args.channels,
        "atom_embedding_dim": args.embedding, "num_layers": args.layers,
        "num_bessel": args.bessel, "radial_hidden": args.radial_hidden,
        "readout_hidden": args.radial_hidden, "cutoff": args.cutoff,
    }  # fmt: skip


def _config(degrees: list[int], args: argparse.Namespace, out: Path) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model": {"name": "gcn", "config": _model(degrees, args)},
            "data": {"qm9": {"target": "U0", "train": args.train, "val": args.val,
                             "seed": args.seed},
                     "batch_size": args.batch_size, "val_batch_size": 64},
            "optim": {"lr": args.lr, "epochs": 10_000, "max_steps": args.steps,
                      "warmup_steps": args.warmup, "ema_decay": 0.99},
            "loss": {"energy_coef": 1.0, "force_coef": 0.0},
            "seed": args.seed, "device": "cpu", "dtype": "float32",
            "out_dir": str(out), "log_every": args.log_every,
        }
    )  # fmt: skip


def _analyze(best: Path, val_file: Path, out: Path) -> dict:
    from equicat.cli.analyze import run as analyze_run

    ns = argparse.Namespace(checkpoint=str(best), data=str(val_file), property="U0_atom",
                            out=str(out), batch_size=64, max_structures=None)  # fmt: skip
    analyze_run(ns)
    return json.loads((out / "irreps_stats.json").read_text())["degrees"]


def run_one(degrees: list[int], args: argparse.Namespace, root: Path, val_file: Path) -> dict:
    """Train one degree set (or reuse its finished run) and analyse its embeddings."""
    name = "L" + "".join(str(d) for d in degrees)
    out = root / name
    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    config = _config(degrees, args, out)
    start = time.perf_counter()
    best = train(config, progress=not args.no_progress)
    wall = time.perf_counter() - start
    ckpt = load(best)
    model = ckpt.build()
    metrics = ckpt.metadata["metrics"]
    row = {
        "degrees": degrees,
        "params": int(sum(p.numel() for p in model.parameters())),
        "val_u0_mae_mev": 1e3 * float(metrics["val_energy_mae"]),
        "val_u0_mae_mev_per_atom": 1e3 * float(metrics["val_energy_mae_per_atom"]),
        "best_step": int(metrics["step"]),
        "steps": args.steps,
        "wall_s": wall,
        "seconds_per_step": wall / args.steps,
        "irreps": _analyze(best, val_file, out / "irreps"),
        "learning_curve": str(out / "learning_curve.png"),
        "irreps_plots": [
            str(out / "irreps" / "irreps_stats.png"),
            str(out / "irreps" / "irreps_pca.png"),
        ],  # fmt: skip
    }
    done.write_text(json.dumps(row, indent=1))
    return row


def reference_baseline(checkpoint: Path, val_file: Path) -> float:
    """meV, validation U0 MAE of the element references alone (no network).

    The references are the per-element least-squares fit on the training molecules that the
    trainer stored in ``checkpoint`` (the same for every degree set: same molecules).
    """
    import ase.io
    import numpy as np

    refs = {int(z): e for z, e in load(checkpoint).metadata["element_references"].items()}
    frames = ase.io.read(val_file, ":")
    errors = [a.info["U0"] - sum(refs[int(z)] for z in a.numbers) for a in frames]
    return 1e3 * float(np.mean(np.abs(errors)))


def val_errors(checkpoint: Path, val_file: Path) -> list[float]:
    """meV, signed U0 error (predicted - reference) of each validation molecule."""
    import ase.io

    from equicat.data import AtomicGraph
    from equicat.models.heads import energy_only

    model = load(checkpoint).build()  # EMA weights, as validated
    frames = ase.io.read(val_file, ":")
    errors = []
    for start in range(0, len(frames), 64):
        batch = frames[start : start + 64]
        graph = AtomicGraph.from_atoms(batch, model.cutoff, model.max_neighbors)
        with torch.no_grad(), energy_only():
            energy = model(graph)["energy"].double()  # [B] eV
        errors += [1e3 * (float(e) - a.info["U0"]) for e, a in zip(energy, batch, strict=True)]
    return errors


def paired(errors: dict[str, list[float]], base: str) -> dict[str, dict[str, float]]:
    """Per-molecule ``|err_L| - |err_base|`` (meV): mean and its standard error, per set."""
    import numpy as np

    ref = np.abs(errors[base])
    out = {}
    for name, err in errors.items():
        diff = np.abs(err) - ref
        out[name] = {"mean_mev": float(diff.mean()),
                     "sem_mev": float(diff.std(ddof=1) / np.sqrt(len(diff)))}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/lset_qm9")
    p.add_argument("--train", type=int, default=1500, help="training molecules")
    p.add_argument("--val", type=int, default=300, help="validation molecules")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps, every model")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--channels", type=int, default=4, help="hidden channels per degree")
    p.add_argument("--embedding", type=int, default=32, help="atom embedding width")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--bessel", type=int, default=8)
    p.add_argument("--radial-hidden", type=int, default=16)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--sets", default=None, help="e.g. '012,03456' (default: all three)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = SETS if args.sets is None else [[int(c) for c in s] for s in args.sets.split(",")]
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    val_file = root / "val.extxyz"
    if not val_file.is_file():  # the validation molecules, for analyze irreps / evaluate
        _, val_frames = qm9_frames(QM9Source("U0", args.train, args.val, args.seed))
        write_frames(val_file, val_frames)
    rows = [run_one(degrees, args, root, val_file) for degrees in sets]
    print(f"\nQM9 U0, {args.train} train / {args.val} val molecules, {args.steps} steps of "
          f"{args.batch_size}, {args.channels} channels/degree, {args.layers} layers, "
          f"{args.threads} thread(s)")  # fmt: skip
    names = ["L" + "".join(map(str, r["degrees"])) for r in rows]
    errors = {n: val_errors(root / n / "best.pt", val_file) for n in names}
    versus = paired(errors, names[0])
    print(f"{'L set':<24}{'params':>9}{'val U0 MAE (meV)':>18}{'meV/atom':>10}{'wall s':>9}"
          f"{'vs first (meV)':>20}")  # fmt: skip
    baseline = reference_baseline(root / f"L{''.join(map(str, sets[0]))}" / "best.pt", val_file)
    print(f"{'element references only':<24}{0:>9}{baseline:>18.1f}")
    for name, r in zip(names, rows, strict=True):
        v = versus[name]
        print(f"{str(r['degrees']):<24}{r['params']:>9}{r['val_u0_mae_mev']:>18.1f}"
              f"{r['val_u0_mae_mev_per_atom']:>10.2f}{r['wall_s']:>9.0f}"
              f"{v['mean_mev']:>+12.1f} ± {v['sem_mev']:<5.1f}")  # fmt: skip
    print(
        "vs first: mean over molecules of |error| minus the first set's |error|, ± its "
        "standard error (same molecules, so the comparison is paired)"
    )
    report = {
        "settings": _config(sets[0], args, root / "L").to_dict() | {
            "threads": args.threads, "python": sys.version.split()[0],
            "torch": torch.__version__, "machine": platform.machine()},
        "rows": rows,
        "element_reference_baseline_mev": baseline,
        "paired_vs_first": versus,
        "val_errors_mev": errors,
    }  # fmt: skip
    (root / "results.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {root / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
