"""Inference speed and parity: equicat's EquiformerV2 and eSCN against the fairchem-1.10 reference.

Both sides run the *same weights*: the reference harness (``shared/tools/fairchem_reference``)
builds a seeded random fairchem model, predicts and times it, and writes a fairchem-1.x
checkpoint; equicat imports that checkpoint and is timed and compared on the same structures
in the same run.

Run from the repository root (2 CPU threads, 3 timed calls, a few minutes for eqv2-31M)::

    python benchmarks/inference.py --models eqv2-small eqv2-31M --threads 2 --repeats 3
    python benchmarks/inference.py --models escn-L6-M3-Lay20 --threads 2 --repeats 3
    python benchmarks/inference.py --models escn-L6-M3-Lay20 --max-atoms 40   # 38 atoms only
    python benchmarks/inference.py --device all          # CPU, plus CUDA when available
    python benchmarks/inference.py --skip-reference      # time equicat only (random weights)
    python benchmarks/inference.py --profile             # + torch.profiler top ops (CPU)

Structures: Cu(111) 3x3x4 + CO (38 atoms) and 5x5x4 + CO (102 atoms), CO in an fcc site at
1.9 Å, rattled by 0.05 Å with a fixed seed; written to ``OUT/structures.extxyz`` and read
back, so both codes see identical positions.

Timing protocol (both sides): one warm-up call, then ``--repeats`` calls under
``torch.no_grad()`` timed with ``time.perf_counter``; the mean per call is reported. Each call
predicts energy and (direct) forces. ``torch.set_num_threads(--threads)`` on both sides.

Columns of the printed table (the same rows go to ``OUT/inference.json``):

- ``model``, ``natoms``, ``device``: the configuration, the structure size, where equicat ran.
- ``ref s/call``: fairchem reference, seconds per forward call on CPU. Its forward builds its
  own radius graph, so this includes graph construction. Only shown on CPU rows.
- ``ours model``: equicat, seconds per ``model(graph)`` call, graph prebuilt.
- ``ours e2e``: equicat end to end, ``AtomicGraph.from_atoms`` (timed separately, same
  protocol) plus the model call: the like-for-like counterpart of ``ref s/call``.
- ``speed-up``: ``ref s/call / ours e2e``; > 1 means equicat is faster.
- ``|dE| eV``: absolute energy difference to the reference.
- ``rel dF``: ``||F_ours - F_ref|| / ||F_ref||`` (Frobenius norms over all atoms).

If the reference cannot run (venv missing and not installable, e.g. offline), the error is
reported on stderr, equicat is timed with random weights of the same architecture, and the
``note`` column says so. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ase.io
import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule
from torch import nn

from equicat.checkpoints.fairchem import equiformer_v2_from_fairchem
from equicat.checkpoints.fairchem_escn import escn_from_fairchem
from equicat.data import AtomicGraph
from equicat.models.equiformer_v2 import EquiformerV2, EquiformerV2Config
from equicat.models.escn import Escn, EscnConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS_ENV = "EQUICAT_REF_HARNESS"
SLAB_SIZES: tuple[tuple[int, int, int], ...] = ((3, 3, 4), (5, 5, 4))
RATTLE_STDEV, RATTLE_SEED = 0.05, 7

# Architectures for --skip-reference / reference failure (published OC20 "31M" / eSCN L6 M3
# 20-layer numbers and the harness's small test models); only used to time random weights of
# the same shape.
FALLBACK_CONFIGS: dict[str, EquiformerV2Config | EscnConfig] = {
    "eqv2-31M": EquiformerV2Config(
        num_layers=8, lmax=4, mmax=2, sphere_channels=128, attn_hidden_channels=64,
        num_heads=8, attn_alpha_channels=64, attn_value_channels=16, ffn_hidden_channels=128,
        edge_channels=128, cutoff=12.0, max_neighbors=20,
    ),
    "eqv2-small": EquiformerV2Config(
        num_layers=2, lmax=2, mmax=1, sphere_channels=32, attn_hidden_channels=16,
        num_heads=2, attn_alpha_channels=8, attn_value_channels=4, ffn_hidden_channels=32,
        edge_channels=32, cutoff=6.0, max_neighbors=20,
    ),
    "escn-L6-M3-Lay20": EscnConfig(
        num_layers=20, lmax=6, mmax=3, sphere_channels=160, hidden_channels=384,
        edge_channels=128, num_distance_basis=600, cutoff=12.0, max_neighbors=20,
    ),
    "escn-small": EscnConfig(
        num_layers=2, lmax=4, mmax=2, sphere_channels=32, hidden_channels=64, edge_channels=32,
        num_distance_basis=300, cutoff=6.0, max_neighbors=20,
    ),
}  # fmt: skip


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(f"[inference] {msg}", file=sys.stderr, flush=True)


@dataclass
class Row:
    """One line of the result table (seconds per call; None where not measured)."""

    model: str
    natoms: int
    device: str
    ref_s: float | None
    ours_model_s: float
    ours_graph_s: float
    ours_e2e_s: float
    speedup: float | None
    dE_eV: float | None
    rel_dF: float | None
    note: str = ""
    ours_model_calls_s: list[float] = field(default_factory=list)
    ours_graph_calls_s: list[float] = field(default_factory=list)
    num_edges: int = 0


# ----------------------------------------------------------------------------- structures


def build_structures() -> list[Atoms]:
    """Cu(111) slabs with CO in an fcc hollow, rattled with a fixed seed (38 and 102 atoms)."""
    frames = []
    for size in SLAB_SIZES:
        slab = fcc111("Cu", size=size, vacuum=8.0)
        add_adsorbate(slab, molecule("CO"), 1.9, "fcc")
        slab.rattle(stdev=RATTLE_STDEV, seed=RATTLE_SEED)
        slab.info.pop("adsorbate_info", None)  # a dict; extxyz cannot store it
        frames.append(slab)
    return frames


def write_structures(out: Path, max_atoms: int | None = None) -> tuple[Path, list[Atoms]]:
    """Write the structures (up to ``max_atoms`` atoms) and read them back (both codes then
    see the same rounding)."""
    path = out / "structures.extxyz"
    frames = [a for a in build_structures() if max_atoms is None or len(a) <= max_atoms]
    if not frames:
        sys.exit(f"--max-atoms {max_atoms}: no benchmark structure is that small")
    ase.io.write(path, frames)
    return path, list(ase.io.read(path, ":"))


# ----------------------------------------------------------------------------- reference


def find_harness() -> Path | None:
    """The reference harness's ``run.sh``: $EQUICAT_REF_HARNESS, else shared/ near the repo."""
    candidates = [Path(os.environ[HARNESS_ENV])] if HARNESS_ENV in os.environ else []
    candidates += [
        REPO_ROOT / "shared" / "tools" / "fairchem_reference",
        REPO_ROOT.parent / "shared" / "tools" / "fairchem_reference",
    ]
    for c in candidates:
        if (c / "run.sh").is_file():
            return c / "run.sh"
    return None


def run_reference(
    model: str, structures: Path, out: Path, threads: int, repeats: int
) -> tuple[Path | None, str]:
    """Run the fairchem harness for one model; ``(its output dir, "")`` or ``(None, why)``."""
    run_sh = find_harness()
    if run_sh is None:
        return None, (
            "reference harness not found: set EQUICAT_REF_HARNESS to the folder holding "
            "fairchem_reference/run.sh"
        )
    ref_dir = out / "reference" / model
    cmd = [
        "bash", str(run_sh), "--model", model, "--structures", str(structures),
        "--out", str(ref_dir), "--threads", str(threads), "--repeats", str(repeats),
    ]  # fmt: skip
    log(f"reference {model}: {' '.join(cmd)}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (ref_dir / "timing.json").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        return None, (
            f"the fairchem reference venv could not be set up or run (exit {proc.returncode}; "
            f"see {run_sh.parent / 'README.md'}):\n{tail}"
        )
    log(f"reference {model}: done in {time.perf_counter() - t0:.1f} s")
    return ref_dir, ""


def load_reference(ref_dir: Path) -> tuple[list[Atoms], dict[str, Any]]:
    """Reference predictions (``ref_energy``/``ref_forces``) and timing of one harness run."""
    frames = list(ase.io.read(ref_dir / "reference.extxyz", ":"))
    timing = json.loads((ref_dir / "timing.json").read_text())
    return frames, timing


# ----------------------------------------------------------------------------- ours


def load_ours(ckpt: Path | None, name: str) -> tuple[nn.Module, EquiformerV2Config | EscnConfig]:
    """equicat's model with the checkpoint's weights, or random weights when ``ckpt`` is None."""
    escn = name.startswith("escn")
    cls = Escn if escn else EquiformerV2
    if ckpt is None:
        torch.manual_seed(0)
        config = FALLBACK_CONFIGS[name]
        model = cls(config)
    else:
        importer = escn_from_fairchem if escn else equiformer_v2_from_fairchem
        config, state = importer(torch.load(ckpt, weights_only=True))
        model = cls(config)
        model.load_state_dict(state)
    return model.eval(), config


def time_calls(
    fn: Callable[[], Any], repeats: int, device: torch.device
) -> tuple[Any, list[float]]:
    """One warm-up call, then ``repeats`` timed calls; returns the last result and the times."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result = fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return result, times


def parity(out: dict[str, torch.Tensor], ref: Atoms) -> tuple[float, float]:
    """``|E - E_ref|`` in eV and ``||F - F_ref|| / ||F_ref||``."""
    energy = float(out["energy"].detach().double().cpu().reshape(-1)[0])
    forces = out["forces"].detach().double().cpu().numpy()
    f_ref = np.asarray(ref.arrays["ref_forces"], dtype=np.float64)
    d_e = abs(energy - float(ref.info["ref_energy"]))
    rel_f = float(np.linalg.norm(forces - f_ref) / max(np.linalg.norm(f_ref), 1e-30))
    return d_e, rel_f


def profile_call(model: nn.Module, graph: AtomicGraph, path: Path, rows: int = 15) -> str:
    """torch.profiler table (by self CPU time) of one no-grad model call, also written to path."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        model(graph)  # warm-up outside the profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(graph)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    path.write_text(table)
    return table


def bench_ours(
    name: str,
    model: nn.Module,
    config: EquiformerV2Config | EscnConfig,
    frames: list[Atoms],
    device: torch.device,
    repeats: int,
) -> list[tuple[int, list[float], list[float], dict[str, torch.Tensor], int]]:
    """Time graph building and model calls per structure on ``device``."""
    model = model.to(device)
    results = []
    for atoms in frames:
        log(f"ours {name} natoms={len(atoms)} device={device.type}: timing")

        def build(atoms: Atoms = atoms) -> AtomicGraph:
            return AtomicGraph.from_atoms(
                atoms, cutoff=config.cutoff, max_neighbors=config.max_neighbors, device=device
            )

        graph, graph_times = time_calls(build, repeats, device)
        with torch.no_grad():
            out, model_times = time_calls(lambda g=graph: model(g), repeats, device)
        results.append((len(atoms), graph_times, model_times, out, graph.num_edges))
    return results


# ----------------------------------------------------------------------------- report

COLUMNS = [
    ("model", 16), ("natoms", 6), ("device", 6), ("ref s/call", 10), ("ours model", 10),
    ("ours e2e", 9), ("speed-up", 8), ("|dE| eV", 9), ("rel dF", 9), ("note", 0),
]  # fmt: skip


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "s":
        return f"{value:.4f}"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "e":
        return f"{value:.2e}"
    return str(value)


def format_table(rows: list[Row]) -> str:
    """Fixed-width text table of the rows."""
    header = "  ".join(f"{n:<{w}}" if w else n for n, w in COLUMNS)
    lines = [header, "-" * len(header)]
    for r in rows:
        cells = [
            r.model, r.natoms, r.device, _fmt(r.ref_s, "s"), _fmt(r.ours_model_s, "s"),
            _fmt(r.ours_e2e_s, "s"), _fmt(r.speedup, "x"), _fmt(r.dE_eV, "e"),
            _fmt(r.rel_dF, "e"), r.note,
        ]  # fmt: skip
        lines.append(
            "  ".join(
                f"{str(c):<{w}}" if w else str(c) for c, (_, w) in zip(cells, COLUMNS, strict=True)
            )
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["eqv2-31M"], choices=sorted(FALLBACK_CONFIGS))
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (both sides)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls after one warm-up")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu",
                   help="where equicat runs; 'all' = cpu and cuda if available")  # fmt: skip
    p.add_argument("--skip-reference", action="store_true",
                   help="time equicat only, random weights, no parity")  # fmt: skip
    p.add_argument("--profile", action="store_true",
                   help="torch.profiler table of one CPU call, smallest structure")  # fmt: skip
    p.add_argument("--max-atoms", type=int, default=None,
                   help="skip structures with more atoms (the full-size eSCN reference needs "
                   "~15 GB and minutes per call on 102 atoms)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("runs/bench_inference"))
    return p.parse_args(argv)


def select_devices(choice: str) -> list[torch.device]:
    """The torch devices for --device; exits with a message if CUDA is asked but missing."""
    cuda = torch.cuda.is_available()
    if choice == "cuda" and not cuda:
        sys.exit("--device cuda: torch.cuda.is_available() is False on this machine; use cpu.")
    names = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"] if cuda else ["cpu"]}
    return [torch.device(n) for n in names[choice]]


def bench_model(
    name: str,
    args: argparse.Namespace,
    devices: list[torch.device],
    structures: Path,
    frames: list[Atoms],
) -> list[Row]:
    """Reference run (unless skipped), then equicat timing and parity, for one model."""
    ref_dir, note = None, "reference skipped (--skip-reference)"
    if not args.skip_reference:
        ref_dir, why = run_reference(name, structures, args.out, args.threads, args.repeats)
        note = "" if ref_dir is not None else "reference failed: see stderr; random weights"
        if ref_dir is None:
            log(f"ERROR {name}: {why}")
    ref_frames, timing = load_reference(ref_dir) if ref_dir else ([], {})
    model, config = load_ours(ref_dir / "checkpoint.pt" if ref_dir else None, name)
    rows = []
    for device in devices:
        for k, (n, g_t, m_t, out, ne) in enumerate(
            bench_ours(name, model, config, frames, device, args.repeats)
        ):
            ref_s = timing["seconds_per_call"][k] if ref_dir and device.type == "cpu" else None
            d_e, rel_f = parity(out, ref_frames[k]) if ref_dir else (None, None)
            graph_s, model_s = float(np.mean(g_t)), float(np.mean(m_t))
            e2e = graph_s + model_s
            rows.append(Row(
                model=name, natoms=n, device=device.type, ref_s=ref_s, ours_model_s=model_s,
                ours_graph_s=graph_s, ours_e2e_s=e2e, speedup=ref_s / e2e if ref_s else None,
                dE_eV=d_e, rel_dF=rel_f, note=note, ours_model_calls_s=m_t,
                ours_graph_calls_s=g_t, num_edges=ne,
            ))  # fmt: skip
    if args.profile:
        model = model.to("cpu")
        atoms = frames[0]
        graph = AtomicGraph.from_atoms(
            atoms, cutoff=config.cutoff, max_neighbors=config.max_neighbors
        )
        path = args.out / f"profile_{name}_{len(atoms)}.txt"
        table = profile_call(model, graph, path)
        log(f"profile {name} natoms={len(atoms)} (cpu) -> {path}\n{table}")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table; writes OUT/inference.json."""
    args = parse_args(argv)
    devices = select_devices(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    if load_before[0] > 0.5:
        log(f"WARNING: load average {load_before[0]:.1f} before start; timings may be noisy")
    structures, frames = write_structures(args.out, args.max_atoms)
    log(f"structures: {[len(f) for f in frames]} atoms -> {structures}")
    rows: list[Row] = []
    for name in args.models:
        rows.extend(bench_model(name, args, devices, structures, frames))
    table = format_table(rows)
    print(table)
    meta = {
        "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
        "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "structures": str(structures), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        # kB on Linux: peak resident memory of this process / of the largest reference run
        "ours_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reference_peak_rss_mb": None
        if args.skip_reference
        else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "speedup": "reference s/call / ours end-to-end s/call (CPU rows only)",
    }  # fmt: skip
    (args.out / "inference.json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1)
    )
    log(f"wrote {args.out / 'inference.json'}")


if __name__ == "__main__":
    main()
