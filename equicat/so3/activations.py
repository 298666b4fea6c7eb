"""Point-wise and sphere-grid activations for equivariant features."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from equicat.so3.grid import SphereGrid

__all__ = ["SmoothLeakyReLU", "SeparableS2Activation", "GridMLP"]


class SmoothLeakyReLU(nn.Module):
    """``f(x) = (1+a)/2 x + (1-a)/2 x (2 sigmoid(x) - 1)``: a smooth leaky ReLU (slope a < 0)."""

    def __init__(self, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.alpha = negative_slope

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"negative_slope={self.alpha}"

    def forward(self, x: Tensor) -> Tensor:
        """Apply element-wise."""
        a = self.alpha
        return 0.5 * (1 + a) * x + 0.5 * (1 - a) * x * (2 * torch.sigmoid(x) - 1)


class SeparableS2Activation(nn.Module):
    """Separable S^2 activation (EquiformerV2 sec. 3.2).

    Invariant channels go through SiLU directly; all degrees are projected to the sphere grid,
    passed through SiLU point-wise and projected back, and degree 0 of the result is replaced
    by the activated invariants.

    Shapes: ``forward(scalars [B, C], x [B, n, C]) -> [B, n, C]`` (coefficients in the grid's
    layout, degree 0 first).
    """

    def __init__(self, grid: SphereGrid) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, scalars: Tensor, x: Tensor) -> Tensor:
        """Activate (shapes in the class docstring)."""
        out = self.grid.apply(x, F.silu)
        return torch.cat((F.silu(scalars)[:, None], out[:, 1:]), dim=1)


class GridMLP(nn.Module):
    """A bias-free SiLU MLP applied point-wise on the sphere grid (EquiformerV2's FFN).

    ``from_grid(L_k(... SiLU(L_1(to_grid(x)))))``. Because a bias-free linear layer over
    channels commutes with the grid transforms (which act on the coefficient axis), the first
    and last layers are applied to the ``n`` coefficients instead of the ``G`` grid points;
    only the middle layers run on the grid. The function is unchanged.

    Shapes: ``[B, n, C_in] -> [B, n, C]`` (same layout, the grid's); ``C_in`` is
    ``in_channels`` (default ``channels``), e.g. node features and messages side by side (eSCN).
    """

    def __init__(
        self, grid: SphereGrid, channels: int, depth: int = 3, in_channels: int | None = None
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"GridMLP needs depth >= 2, got {depth}")
        self.grid = grid
        layers: list[nn.Module] = []
        for i in range(depth):
            c_in = in_channels if (i == 0 and in_channels is not None) else channels
            layers.append(nn.Linear(c_in, channels, bias=False))
            if i < depth - 1:
                layers.append(nn.SiLU())
        self.mlp = nn.Sequential(*layers)

    def _middle(self, g: Tensor) -> Tensor:
        # grid values [k, G, C]: SiLU, then each middle layer followed by SiLU
        g = F.silu(g)
        for layer in list(self.mlp)[2:-1]:
            g = layer(g)
        return g

    def forward(self, x: Tensor) -> Tensor:
        """Apply the point-wise MLP on the grid (shapes in the class docstring)."""
        first, last = self.mlp[0], self.mlp[-1]
        h = first(x)  # [B, n, C], commutes with to_grid
        h = self.grid.apply_channels_last(h, self._middle)
        return last(h)  # commutes with from_grid
