"""``equicat adsorbml-benchmark``: AdsorbML success rate and speedup on OC-EMT-Dense.

Builds N adsorbate-surface systems (EMT metals, fcc(111)/(100), small OC20 adsorbates),
relaxes every placement fully with the oracle for the ground truth, runs the AdsorbML
workflow with the ML model, and prints success and speedup at k = 1..5 and CPU/GPU-seconds
per ML relaxation (EquiformerV2 paper, Table 3). Everything is cached under OUT; a rerun
resumes. ``--checkpoint oracle`` relaxes with the oracle itself in place of the ML model: a
check of the pipeline and metrics (success should then be near 100%).
"""

from __future__ import annotations

import argparse
import json

from equicat.cli.adsorbml import add_common, load_potential, workflow_config

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "adsorbml-benchmark", help="AdsorbML success/speedup at k=1..5 on OC-EMT-Dense",
        description=__doc__.split("\n\n")[1],
    )  # fmt: skip
    p.add_argument("--systems", type=int, default=20, help="adsorbate-surface systems (20)")
    p.add_argument("--layers", type=int, default=3, help="slab layers (3)")
    p.add_argument("--max-adsorbate-atoms", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat adsorbml-benchmark``."""
    import torch

    from equicat.adsorbml import resolve_oracle
    from equicat.adsorbml.benchmark import BenchmarkConfig, run_benchmark
    from equicat.adsorbml.metrics import format_table

    torch.set_num_threads(args.threads)
    config = BenchmarkConfig(
        systems=args.systems, seed=args.seed, layers=args.layers,
        max_adsorbate_atoms=args.max_adsorbate_atoms, workflow=workflow_config(args, 5),
    )  # fmt: skip
    if args.checkpoint == "oracle":
        potential = resolve_oracle(args.oracle)
    else:
        potential = load_potential(args.checkpoint, args.device)
    result = run_benchmark(args.out, potential, resolve_oracle(args.oracle), config,
                           label=str(args.checkpoint), progress=not args.quiet)  # fmt: skip
    print(format_table(result, str(args.checkpoint)))
    brief = {k: result[k] for k in ("systems", "placements", "ml_relaxations",
                                    "seconds_per_relaxation", "wall_s_per_relaxation")}  # fmt: skip
    print(json.dumps(brief))
    print(f"equicat adsorbml-benchmark: results -> {args.out / 'results.json'}")
    return 0
