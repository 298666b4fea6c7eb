"""Exponential moving average of a model's weights."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["EMA"]


class EMA:
    """Shadow weights ``w_ema <- d_t w_ema + (1 - d_t) w`` after every optimizer step.

    The decay warms up as ``d_t = min(decay, (1 + t) / (10 + t))`` (``t`` = updates so far),
    so early averages are not dominated by the random initialisation. Integer buffers are
    copied, not averaged. ``decay=None`` keeps the shadow equal to the live weights.

    Args:
        model: The model being trained (its current weights start the average).
        decay: Target decay in ``[0, 1)``, or ``None``.
    """

    def __init__(self, model: nn.Module, decay: float | None) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        self.updates += 1
        d = 0.0 if self.decay is None else min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if value.is_floating_point():
                shadow.lerp_(value.detach(), 1.0 - d)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged weights, in the model's ``state_dict`` layout."""
        return self.shadow

    def load(self, shadow: dict[str, Tensor], updates: int) -> None:
        """Restore a saved average (from :meth:`state_dict`) and its update count."""
        missing = sorted(set(self.shadow) ^ set(shadow))
        if missing:
            raise ValueError(f"EMA state does not fit the model (keys {missing[:5]})")
        for name, value in shadow.items():
            self.shadow[name].copy_(value)
        self.updates = int(updates)
