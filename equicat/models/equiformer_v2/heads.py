"""EquiformerV2 output heads: per-system energy and direct forces."""

from __future__ import annotations

from torch import Tensor, nn

from equicat.models.equiformer_v2.attention import EdgeContext, GraphAttention
from equicat.models.equiformer_v2.ffn import FeedForward

__all__ = ["EnergyHead", "DirectForceHead"]


class EnergyHead(nn.Module):
    """Degree-0 output of a feed-forward network, summed per system / ``avg_num_nodes``.

    Shapes: ``forward(x [N, n, C], batch [N], num_systems) -> [B]`` (network units).
    """

    def __init__(
        self, lmax: int, channels: int, hidden: int, grid_resolution: int, avg_num_nodes: float
    ):
        super().__init__()
        self.ffn = FeedForward(lmax, channels, hidden, 1, grid_resolution)
        self.avg_num_nodes = avg_num_nodes

    def forward(self, x: Tensor, batch: Tensor, num_systems: int) -> Tensor:
        """Per-system energies (shapes in the class docstring)."""
        node = self.ffn(x)[:, 0, 0]
        return node.new_zeros(num_systems).index_add_(0, batch, node) / self.avg_num_nodes


class DirectForceHead(nn.Module):
    """Graph attention with one output channel; its degree-1 coefficients are the force.

    The degree-1 block of the real harmonics is proportional to ``(x, y, z)``, so coefficients
    1..3 are directly a Cartesian vector. Shapes: ``forward(x [N, n, C], ctx) -> [N, 3]``.
    """

    def __init__(self, attention: GraphAttention) -> None:
        super().__init__()
        self.attention = attention

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Per-atom forces (network units)."""
        return self.attention(x, ctx)[:, 1:4, 0]
