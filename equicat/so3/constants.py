"""Constant tensors kept in float64 and cast once per device and dtype.

Modules such as :class:`~equicat.so3.wigner.WignerD` and the sphere grids hold exact
constants (sample points, pseudo-inverses, grid matrices). Registering them as float32
buffers would lose precision for float64 runs (``module.double()`` only upcasts a rounded
value), so they are built in float64 and cast lazily here instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ConstantCache"]


class ConstantCache:
    """Holds float64 master copies of constants and their per-(device, dtype) casts."""

    def __init__(self, **tensors: Tensor) -> None:
        self._master = {k: v.to(torch.float64) for k, v in tensors.items()}
        self._cast: dict[tuple[str, torch.device, torch.dtype], Tensor] = {}

    def get(self, name: str, like: Tensor) -> Tensor:
        """Return constant ``name`` on ``like``'s device with ``like``'s floating dtype."""
        key = (name, like.device, like.dtype)
        t = self._cast.get(key)
        if t is None:
            t = self._master[name].to(device=like.device, dtype=like.dtype)
            self._cast[key] = t
        return t
