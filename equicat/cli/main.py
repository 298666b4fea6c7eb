"""The ``equicat`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from equicat.cli import (
    adsorbml,
    adsorbml_benchmark,
    analyze,
    datagen,
    evaluate,
    is2rs,
    md,
    predict,
    relax,
    train,
)

__all__ = ["main"]

COMMANDS = {
    "predict": predict, "datagen": datagen, "train": train, "relax": relax, "evaluate": evaluate,
    "md": md, "is2rs": is2rs, "adsorbml": adsorbml, "adsorbml-benchmark": adsorbml_benchmark,
    "analyze": analyze,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-command per module in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="equicat", description="Equivariant ML interatomic potentials for ASE users."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except (FileNotFoundError, ValueError) as err:
        print(f"equicat {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
