"""``equicat adsorbml``: the AdsorbML workflow for one adsorbate on one slab, resumable.

Places the adsorbate on the slab (heuristic sites + random sites), relaxes every placement
with the ML model, drops anomalous structures, ranks by ML energy, runs the oracle on the k
lowest, and writes ``summary.json``, ``chosen.extxyz``, ``report.png`` and ``chosen.png`` to
OUT. Rerunning with the same OUT and settings skips finished work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from equicat.checkpoints.registry import DEFAULT

__all__ = ["add_parser", "run", "add_common", "load_potential"]


def add_common(p: argparse.ArgumentParser) -> None:
    """Model, oracle and relaxation options shared with ``adsorbml-benchmark``."""
    p.add_argument("--checkpoint", default=DEFAULT,
                   help=f"checkpoint file or shipped name (default: {DEFAULT})")  # fmt: skip
    p.add_argument("--oracle", default="emt",
                   help="'emt', an ASE calculator name (vasp, espresso, gpaw, ...) or "
                   "'module:callable' returning an ASE calculator (default: emt)")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--random", type=int, default=8, dest="num_random",
                   help="random-site placements (AdsorbML: ~90 placements in all)")  # fmt: skip
    p.add_argument("--per-site", type=int, default=1,
                   help="heuristic placements per symmetry-distinct site (1)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fmax", type=float, default=0.02, help="eV/Å, ML relaxation (0.02)")
    p.add_argument("--steps", type=int, default=300, help="most ML relaxation steps (300)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "adsorbml", help="adsorption energy by AdsorbML (ML screen + oracle top k), resumable",
        description=__doc__.split("\n\n")[1],
    )  # fmt: skip
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--slab", help="clean slab file; untagged slabs: top 2.5 Å free (tag 1)")
    src.add_argument("--bulk", help="bulk file or element symbol (ase.build.bulk) to cut")
    p.add_argument("--miller", type=int, nargs=3, default=(1, 1, 1), help="with --bulk")
    p.add_argument("--layers", type=int, default=4, help="with --bulk (4)")
    p.add_argument("--size", type=int, nargs=2, default=(2, 2), help="with --bulk (2 2)")
    p.add_argument("--adsorbate", required=True,
                   help="OC20 name (e.g. '*CO', '*OH') or a molecule file")  # fmt: skip
    p.add_argument("--binding", type=int, nargs="+", default=None,
                   help="binding atom indices, with an adsorbate file")  # fmt: skip
    p.add_argument("--k", type=int, default=5, help="oracle single points (5)")
    add_common(p)


def load_potential(checkpoint: str, device: str | None):
    """The ML model as a relaxation potential."""
    from equicat.calculators import Predictor
    from equicat.checkpoints.registry import resolve
    from equicat.relax import ModelPotential

    return ModelPotential.from_predictor(Predictor.from_checkpoint(resolve(checkpoint), device))


def _slab(args: argparse.Namespace):
    from equicat.adsorbml import load_slab, slab_from_bulk

    if args.slab:
        return load_slab(args.slab)
    import ase.io
    from ase.build import bulk

    crystal = ase.io.read(args.bulk) if Path(args.bulk).is_file() else bulk(args.bulk)
    return slab_from_bulk(crystal, tuple(args.miller), args.layers, tuple(args.size))


def _adsorbate(args: argparse.Namespace):
    from equicat.adsorbml import AdsorbateSpec, adsorbate_by_name

    if not Path(args.adsorbate).is_file():
        return adsorbate_by_name(args.adsorbate)
    import ase.io

    if not args.binding:
        raise ValueError(f"--adsorbate {args.adsorbate} is a file: pass --binding INDEX...")
    atoms = ase.io.read(args.adsorbate)
    return AdsorbateSpec(Path(args.adsorbate).stem, atoms, tuple(args.binding))


def workflow_config(args: argparse.Namespace, k: int):
    """The WorkflowConfig the options describe."""
    from equicat.adsorbml import PlacementConfig, WorkflowConfig

    placement = PlacementConfig(args.per_site, args.num_random, seed=args.seed)
    return WorkflowConfig(placement=placement, k=k, fmax=args.fmax, steps=args.steps,
                          batch_size=args.batch_size)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat adsorbml``."""
    from equicat.adsorbml import resolve_oracle, run_workflow

    summary = run_workflow(
        args.out, _slab(args), _adsorbate(args), load_potential(args.checkpoint, args.device),
        resolve_oracle(args.oracle), workflow_config(args, args.k), progress=not args.quiet,
    )  # fmt: skip
    keys = ("placements", "valid", "anomalies_by_rule", "best_oracle_energy",
            "adsorption_energy", "chosen_structure")  # fmt: skip
    print(json.dumps({k: summary[k] for k in keys}, indent=1))
    print(f"equicat adsorbml: summary -> {args.out / 'summary.json'}")
    return 0
