"""The resumable training state file (``train_state.pt``).

A plain dict written atomically with ``torch.save`` and read with
``torch.load(weights_only=True)``: ``format``, ``version``, ``step`` (optimizer steps done),
``config`` (the :class:`~equicat.train.config.TrainConfig` as plain data), ``prepared``
(element references, normalisation, model config), ``model`` (raw weights), ``ema`` and
``ema_updates``, ``optimizer``, ``scheduler``, ``best_loss`` and, for fp16 runs, ``scaler``.
It holds the weights itself so that it alone restarts a run: a crash between writing it and
``last.pt`` cannot leave the two out of step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from equicat.data.dataset import atomic_open

__all__ = ["STATE_FORMAT", "save_state", "load_state", "resume_conflicts"]

STATE_FORMAT = "equicat-train-state"
STATE_VERSION = 1

# config entries that may change when a run is resumed (the schedule is re-derived)
RESUMABLE_CHANGES = (
    "optim.epochs", "optim.max_steps", "device", "out_dir", "log_every", "tensorboard",
    "state_every",
)  # fmt: skip


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format and version) atomically."""
    with atomic_open(path, "wb") as fh:
        torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, **state}, fh)
    return Path(path)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state file written by :func:`save_state`.

    Raises:
        ValueError: The file is unreadable or not a training state of this version.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad files
        raise ValueError(
            f"cannot read training state {str(path)!r} ({type(err).__name__}); delete it to "
            "start the run afresh"
        ) from err
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{str(path)!r} is not an equicat training state file")
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"{str(path)!r} is training-state version {state.get('version')}; this equicat "
            f"reads version {STATE_VERSION}"
        )
    return state


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "config":
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def resume_conflicts(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Config entries that differ between a saved run and the config resuming it.

    Entries in :data:`RESUMABLE_CHANGES` are allowed to differ and are not reported.
    """
    old, new = _flatten(saved), _flatten(current)
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in keys
        if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES
    ]
