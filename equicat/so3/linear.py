"""Degree-wise linear layers on l-major coefficients."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SO3Linear"]


class SO3Linear(nn.Module):
    """Equivariant linear map: one ``[C_out, C_in]`` matrix per degree, bias on ``l = 0``.

    Args:
        in_channels: Channels in.
        out_channels: Channels out.
        lmax: Largest degree of the full l-major input ``[N, (lmax+1)^2, C_in]``.

    Shapes: ``[N, (lmax+1)^2, C_in] -> [N, (lmax+1)^2, C_out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, lmax: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.lmax = in_channels, out_channels, lmax
        bound = 1 / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.empty(lmax + 1, out_channels, in_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"lmax={self.lmax}, in={self.in_channels}, out={self.out_channels}"

    def forward(self, x: Tensor) -> Tensor:
        """Apply the per-degree weights (shapes in the class docstring)."""
        outs = []
        for l_ in range(self.lmax + 1):
            # [N, 2l+1, C_in] @ [C_in, C_out]
            outs.append(x[:, l_ * l_ : (l_ + 1) ** 2] @ self.weight[l_].T)
        out = torch.cat(outs, dim=1)
        out[:, 0] = out[:, 0] + self.bias
        return out
