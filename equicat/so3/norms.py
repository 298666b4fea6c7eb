"""Equivariant normalisation of spherical-harmonic features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equicat.so3.constants import ConstantCache

__all__ = ["SeparableLayerNorm"]


class SeparableLayerNorm(nn.Module):
    """EquiformerV2's separable layer norm (``layer_norm_sh``).

    Degree 0 gets an ordinary LayerNorm over channels. Degrees ``l > 0`` share one
    rotation-invariant scale per node: the degree-balanced mean square

        s = mean_c sum_{l>0} 1/(lmax (2l+1)) sum_m x_{lmc}^2,

    and each degree is then ``x_l * g_l / sqrt(s + eps)`` with a learned per-channel gain ``g_l``.
    No centering is applied to ``l > 0`` (it would break equivariance).

    Args:
        lmax: Largest degree.
        channels: Channels per coefficient.
        eps: Added to the mean square.

    Shapes: ``[N, (lmax+1)^2, C] -> [N, (lmax+1)^2, C]``.
    """

    def __init__(self, lmax: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.lmax, self.channels, self.eps = lmax, channels, eps
        self.norm_l0 = nn.LayerNorm(channels, eps=eps)
        self.affine_weight = nn.Parameter(torch.ones(lmax, channels))
        balance = [
            1.0 / (lmax * (2 * l_ + 1)) for l_ in range(1, lmax + 1) for _ in range(2 * l_ + 1)
        ]
        self.const = ConstantCache(balance=torch.tensor(balance, dtype=torch.float64))

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"lmax={self.lmax}, channels={self.channels}, eps={self.eps}"

    def forward(self, x: Tensor) -> Tensor:
        """Normalise (shapes in the class docstring)."""
        out0 = self.norm_l0(x[:, :1])
        if self.lmax == 0:
            return out0
        rest = x[:, 1:]  # [N, n-1, C]
        ms = torch.einsum("nic,i->nc", rest.pow(2), self.const.get("balance", x)).mean(1)  # [N]
        inv = (ms + self.eps).rsqrt()[:, None, None]
        gain = torch.repeat_interleave(
            self.affine_weight, torch.arange(1, self.lmax + 1, device=x.device) * 2 + 1, dim=0
        )  # [n-1, C]
        return torch.cat((out0, rest * inv * gain), dim=1)
