"""Mixed precision for training: bf16 / fp16 autocast and the fp16 gradient scaler.

``amp: bf16`` runs the forward pass (and conservative models' force gradients) under
``torch.autocast`` in bfloat16, on CUDA or CPU; weights, optimizer state, the loss and
validation stay in the run's ``dtype`` (float32). ``amp: fp16`` needs CUDA (CPU float16
autocast is not a supported training path) and adds a ``GradScaler`` against gradient
underflow. Mixed precision is refused with ``dtype: float64``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

__all__ = ["AMP_MODES", "check_amp", "autocast", "make_scaler"]

AMP_MODES = (None, "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None, device: torch.device, dtype: torch.dtype) -> None:
    """Refuse combinations that cannot train.

    Raises:
        ValueError: Unknown mode, fp16 off CUDA, or mixed precision with float64.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be null, 'bf16' or 'fp16', got {amp!r}")
    if amp is None:
        return
    if dtype == torch.float64:
        raise ValueError(f"amp: {amp} mixes precision down from float32; use dtype: float32")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(
            f"amp: fp16 needs a CUDA device (this run is on {device.type}); use amp: bf16, "
            "which also runs on CPU, or amp: null"
        )


def autocast(amp: str | None, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context of ``amp`` on ``device`` (a null context for ``None``)."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[amp])


def make_scaler(amp: str | None, device: torch.device) -> Any:
    """A ``torch.amp.GradScaler`` for fp16 on CUDA, else ``None``."""
    if amp == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None
