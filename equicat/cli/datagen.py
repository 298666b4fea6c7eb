"""``equicat datagen``: generate labelled training data with a reference oracle."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command and its generators."""
    p = sub.add_parser(
        "datagen",
        help="generate labelled training data",
        description="Generate labelled structures with a reference calculator.",
    )
    gens = p.add_subparsers(dest="generator", required=True)
    g = gens.add_parser(
        "oc-emt",
        help="metal slabs + OC20 adsorbates, relaxed and labelled by EMT",
        description="OC20-style S2EF data: fcc(111)/(100) slabs of Al Ni Cu Pd Ag Pt Au with "
        "a C/H/N/O adsorbate, relaxation frames and rattled frames labelled by the oracle. "
        "Writes OUT/train.extxyz, OUT/val.extxyz (val-ID), OUT/manifest.json and, with "
        "--ood-adsorbates/--ood-catalysts, the OC20-style OUT/val_ood_{ads,cat,both}.extxyz; "
        "resumable (chunks in OUT/chunks are reused).",
    )
    g.add_argument("--out", required=True, help="output directory")
    g.add_argument("--systems", type=int, required=True, help="number of slab+adsorbate systems")
    g.add_argument("--seed", type=int, default=0, help="data-set seed")
    g.add_argument(
        "--oracle", default="emt",
        help="reference calculator: 'emt', an ASE calculator name (vasp, espresso, gpaw, ...) "
        "or 'module:callable' returning an ASE calculator (default: emt)",
    )  # fmt: skip
    g.add_argument(
        "--placement", choices=("adsorbml", "simple"), default="adsorbml",
        help="adsorbate placement: the AdsorbML code (heuristic or random site, covalent-radius "
        "height; default) or the simple rule of the first OC-EMT sets (binding atom 1.8-2.2 Å "
        "over a high-symmetry site)",
    )  # fmt: skip
    g.add_argument(
        "--alloys", type=float, default=0.0, metavar="FRACTION",
        help="share of systems on random binary-alloy slabs (0)",
    )  # fmt: skip
    g.add_argument("--relax-steps", type=int, default=60, help="BFGS step limit per system")
    g.add_argument("--keep-every", type=int, default=4, help="keep every k-th relaxation frame")
    g.add_argument("--rattle-frames", type=int, default=3, help="rattled frames per system")
    g.add_argument("--rattle-std", type=float, default=0.05, help="largest rattle, Å")
    g.add_argument("--fmax", type=float, default=0.05, help="relaxation force criterion, eV/Å")
    g.add_argument(
        "--max-force", type=float, default=10.0,
        help="drop frames with a larger force, eV/Å (<= 0 keeps all)",
    )  # fmt: skip
    g.add_argument("--val-fraction", type=float, default=0.1, help="systems held out")
    g.add_argument(
        "--ood-adsorbates", type=int, default=0,
        help="adsorbates held out of training for val-OOD-ads/-both (chosen by the seed)",
    )  # fmt: skip
    g.add_argument(
        "--ood-catalysts", type=int, default=0,
        help="surfaces (one facet of a distinct metal each) held out for val-OOD-cat/-both",
    )  # fmt: skip
    g.add_argument("--chunk-size", type=int, default=8, help="systems per chunk file")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def _oracle(name: str):
    if name.lower() == "emt":
        return None  # a fresh EMT per system
    from equicat.adsorbml.oracle import resolve_oracle

    return resolve_oracle(name)


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat datagen``."""
    from equicat.data.oc_emt import Recipe, write_dataset
    from equicat.data.oc_emt_splits import choose_holdout

    recipe = Recipe(
        relax_steps=args.relax_steps, keep_every=args.keep_every,
        rattle_frames=args.rattle_frames, rattle_std=args.rattle_std, fmax=args.fmax,
        max_force=args.max_force if args.max_force > 0 else None, alloy_fraction=args.alloys,
    )  # fmt: skip
    placer = None
    if args.placement == "adsorbml":
        from equicat.adsorbml.placements import datagen_placer

        placer = datagen_placer()
    paths = write_dataset(
        args.out, args.systems, args.seed, _oracle(args.oracle), recipe,
        val_fraction=args.val_fraction, chunk_size=args.chunk_size,
        holdout=choose_holdout(args.seed, args.ood_adsorbates, args.ood_catalysts),
        progress=not args.no_progress, placer=placer, placement=args.placement,
    )  # fmt: skip
    for name, path in paths.items():
        print(f"{name}: {path}")
    held = json.loads(paths["manifest"].read_text())["holdout"]
    if held["adsorbates"] or held["catalysts"]:
        print(f"held out: adsorbates {held['adsorbates']}, catalysts {held['catalysts']}")
    return 0
