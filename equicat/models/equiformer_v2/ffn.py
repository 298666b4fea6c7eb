"""Feed-forward network with a point-wise MLP on the sphere grid."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equicat.so3 import CoefficientLayout, GridMLP, SO3Linear, SphereGrid

__all__ = ["FeedForward"]


class FeedForward(nn.Module):
    """``SO3Linear -> (grid MLP on all degrees, SiLU MLP on degree 0) -> SO3Linear``.

    The hidden features are projected to the sphere grid, passed through a bias-free SiLU MLP
    point-wise and projected back; their degree 0 is then replaced by ``SiLU(Linear(x_0))``,
    computed from the block's *input* invariants.

    Shapes: ``[N, (L+1)^2, C_in] -> [N, (L+1)^2, C_out]``.
    """

    def __init__(
        self,
        lmax: int,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        grid_resolution: int,
    ) -> None:
        super().__init__()
        self.linear_1 = SO3Linear(in_channels, hidden_channels, lmax)
        self.scalar_mlp = nn.Sequential(nn.Linear(in_channels, hidden_channels), nn.SiLU())
        grid = SphereGrid(
            CoefficientLayout(lmax, lmax), grid_resolution, grid_resolution, "l_major"
        )
        self.grid_mlp = GridMLP(grid, hidden_channels)
        self.linear_2 = SO3Linear(hidden_channels, out_channels, lmax)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the network (shapes in the class docstring)."""
        gate = self.scalar_mlp(x[:, 0])
        h = self.linear_1(x)
        h = self.grid_mlp(h)
        h = torch.cat((gate[:, None], h[:, 1:]), dim=1)
        return self.linear_2(h)
