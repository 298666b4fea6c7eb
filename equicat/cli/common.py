"""Arguments and input reading shared by the commands that run a model."""

from __future__ import annotations

import argparse
from typing import Any

from equicat.checkpoints.registry import DEFAULT

__all__ = ["add_model_arguments", "read_structures"]


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``structures``, ``--checkpoint``, ``--device`` and ``--dtype``."""
    p.add_argument("structures", nargs="+", help="structure files (extxyz, cif, POSCAR, traj, ...)")
    p.add_argument(
        "--checkpoint",
        default=DEFAULT,
        help="equicat or fairchem-1.x checkpoint file, or a shipped checkpoint's name "
        f"(default: {DEFAULT}, the shipped OC-EMT model)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])


def read_structures(paths: list[str]) -> tuple[list[Any], list[str]]:
    """Every frame of every file, and a name for each (``FILE`` or ``FILE@i``).

    Raises:
        FileNotFoundError: A file does not exist.
        ValueError: A file cannot be read, or is named twice.
    """
    import ase.io

    frames, names = [], []
    for path in paths:
        try:
            read = ase.io.read(path, ":")
        except FileNotFoundError:
            raise FileNotFoundError(f"structure file {path!r} does not exist") from None
        except Exception as err:
            raise ValueError(f"cannot read structure file {path!r}: {err}") from err
        read = read if isinstance(read, list) else [read]
        frames += read
        names += [f"{path}@{i}" if len(read) > 1 else path for i in range(len(read))]
    if len(set(names)) != len(names):
        raise ValueError("a structure file is named twice; pass each file once")
    return frames, names
