"""Transforms between coefficients and values on a latitude-longitude sphere grid.

The grid has ``res_beta`` polar angles ``beta_b = pi (b + 1/2) / res_beta`` (measured from the
polar axis y) and ``res_alpha`` azimuths ``alpha_a = 2 pi a / res_alpha``. Point
``(b, a)`` is ``(sin b sin a, cos b, sin b cos a)``.

``to_grid``: ``f(p) = sum_i c_i Y_i(p) / sqrt((2l + 1)(lmax + 1))``;
``from_grid``: ``c_i = (lmax + 1)^(1/2) (2l + 1)^(1/2) sum_p w_b / (2 res_alpha) f(p) Y_i(p)``,
with ``w_b`` the equiangular quadrature weights exact for polynomials of degree
``< res_beta`` in ``cos beta`` (so ``from_grid(to_grid(c)) = c`` for band-limited input).
When ``mmax < lmax`` both matrices carry an extra factor ``sqrt((2l + 1) / (2 mmax + 1))``
for ``l > mmax``; this is the convention of the published EquiformerV2 weights.

``normalization="integral"`` (the convention of the published eSCN and SCN weights) instead uses the
orthonormal harmonics, ``f(p) = sum_i c_i Y_i(p) / sqrt(4 pi)``, with ``from_grid`` its
quadrature inverse and no truncation factor. The two conventions differ by a per-degree
scale, which matters once a non-linearity is applied on the grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from equicat.so3.constants import ConstantCache
from equicat.so3.harmonics import spherical_harmonics
from equicat.so3.layout import CoefficientLayout

__all__ = ["SphereGrid", "lat_long_points", "quadrature_weights"]


def quadrature_weights(res_beta: int) -> np.ndarray:
    """Weights ``w_b`` with ``sum_b w_b P(cos beta_b) = int_0^pi P(cos beta) sin beta d beta``.

    Exact for polynomials ``P`` of degree ``< res_beta`` (solved from Legendre moments).
    """
    x = np.cos((np.arange(res_beta) + 0.5) / res_beta * np.pi)
    vander = np.stack([np.polynomial.legendre.Legendre.basis(k)(x) for k in range(res_beta)])
    rhs = np.zeros(res_beta)
    rhs[0] = 2.0
    return np.linalg.solve(vander, rhs)


def lat_long_points(res_beta: int, res_alpha: int) -> Tensor:
    """``[res_beta * res_alpha, 3]`` float64 grid points, polar angle major (module docstring)."""
    beta = (torch.arange(res_beta, dtype=torch.float64) + 0.5) / res_beta * math.pi
    alpha = torch.arange(res_alpha, dtype=torch.float64) / res_alpha * 2 * math.pi
    b, a = torch.meshgrid(beta, alpha, indexing="ij")
    return torch.stack((b.sin() * a.sin(), b.cos(), b.sin() * a.cos()), -1).reshape(-1, 3)


class SphereGrid(nn.Module):
    """Coefficient <-> grid transforms for a layout.

    Args:
        layout: Which coefficients (and in which order) the features hold.
        res_beta: Number of polar angles.
        res_alpha: Number of azimuths.
        order: ``"m_major"`` (edge-frame features) or ``"l_major"`` (global-frame features).
        normalization: ``"equiformer_v2"`` or ``"integral"`` (module docstring).

    Shapes: ``to_grid`` maps ``[B, n, C] -> [B, G, C]`` with ``G = res_beta * res_alpha``,
    ``from_grid`` maps back.
    """

    def __init__(
        self,
        layout: CoefficientLayout,
        res_beta: int,
        res_alpha: int,
        order: str = "m_major",
        normalization: str = "equiformer_v2",
    ) -> None:
        super().__init__()
        self.layout = layout
        self.res_beta, self.res_alpha = res_beta, res_alpha
        points = lat_long_points(res_beta, res_alpha)
        if order not in ("m_major", "l_major"):
            raise ValueError(f"order must be 'm_major' or 'l_major', got {order!r}")
        self.order = order
        idx = list(layout.m_major if order == "m_major" else layout.l_major)
        y = spherical_harmonics(layout.lmax, points)[:, idx]  # [G, n]
        deg = torch.tensor([CoefficientLayout.degree(i) for i in idx], dtype=torch.float64)
        if normalization not in ("equiformer_v2", "integral"):
            raise ValueError(
                f"normalization must be 'equiformer_v2' or 'integral', got {normalization!r}"
            )
        self.normalization = normalization
        scale = torch.sqrt((2 * deg + 1) * (layout.lmax + 1))
        if normalization == "integral":
            scale = torch.full_like(deg, math.sqrt(4 * math.pi))
            scale_extra = torch.ones_like(deg)
        elif layout.mmax < layout.lmax:
            scale_extra = torch.where(
                deg > layout.mmax, torch.sqrt((2 * deg + 1) / (2 * layout.mmax + 1)), 1.0
            )
        else:
            scale_extra = torch.ones_like(deg)
        w = torch.from_numpy(quadrature_weights(res_beta)).repeat_interleave(res_alpha)
        to_grid = y / scale * scale_extra  # [G, n]
        from_grid = (y * (w / (2 * res_alpha))[:, None]) * scale * scale_extra  # [G, n]
        from_grid = from_grid.T.contiguous()  # [n, G]
        self.const = ConstantCache(
            to_grid=to_grid,
            from_grid=from_grid,
            to_grid_t=to_grid.T.contiguous(),
            from_grid_t=from_grid.T.contiguous(),
        )

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        lay = self.layout
        return (
            f"lmax={lay.lmax}, mmax={lay.mmax}, grid={self.res_beta}x{self.res_alpha}, "
            f"order={self.order}"
        )

    def to_grid(self, x: Tensor) -> Tensor:
        """``[B, n, C]`` coefficients -> ``[B, G, C]`` grid values."""
        return torch.matmul(self.const.get("to_grid", x), x)

    def from_grid(self, x: Tensor) -> Tensor:
        """``[B, G, C]`` grid values -> ``[B, n, C]`` coefficients."""
        return torch.matmul(self.const.get("from_grid", x), x)

    def _chunk_rows(self, budget_bytes: int = 1 << 20) -> int:
        """Rows per chunk so one chunk of grid values (float32) stays in a core's cache."""
        return max(64, budget_bytes // (4 * self.res_beta * self.res_alpha))

    def apply(self, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        """``from_grid(fn(to_grid(x)))`` for an element-wise ``fn``, without storing the grid.

        Grid values are laid out channels-major, ``[B*C, G]``, so both transforms are plain
        GEMMs, and rows are processed in cache-sized chunks: the grid (``G / n`` times larger
        than the coefficients) never goes to main memory. With autograd recording, the
        chunks are concatenated instead of written in place.

        Args:
            x: ``[B, n, C]`` coefficients.
            fn: Element-wise function (e.g. SiLU).

        Returns:
            ``[B, n, C]`` coefficients.
        """
        b, n, c = x.shape
        to_grid_t = self.const.get("to_grid_t", x)  # [n, G]
        from_grid_t = self.const.get("from_grid_t", x)  # [G, n]
        rows = x.transpose(1, 2).reshape(b * c, n)  # [B*C, n]
        step = self._chunk_rows()
        if torch.is_grad_enabled() and x.requires_grad:
            parts = [
                fn(rows[i : i + step] @ to_grid_t) @ from_grid_t for i in range(0, b * c, step)
            ]
            out = torch.cat(parts) if parts else rows.new_zeros(0, n)
        else:
            out = rows.new_empty(b * c, n)
            for i in range(0, b * c, step):
                torch.mm(fn(rows[i : i + step] @ to_grid_t), from_grid_t, out=out[i : i + step])
        return out.reshape(b, c, n).transpose(1, 2)  # [B*C, n] -> [B, n, C]

    def apply_channels_last(self, x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        """``from_grid(fn(to_grid(x)))`` for an ``fn`` that mixes channels point-wise.

        Processes cache-sized groups of rows of ``x`` (``[B, n, C] -> [k, G, C]`` grids).

        Args:
            x: ``[B, n, C]`` coefficients.
            fn: Map on ``[..., C]`` grid values (e.g. an MLP over channels).

        Returns:
            ``[B, n, C']`` coefficients.
        """
        b, _, c = x.shape
        to_grid = self.const.get("to_grid", x)  # [G, n]
        from_grid = self.const.get("from_grid", x)  # [n, G]
        step = max(1, self._chunk_rows() // max(c, 1))
        parts = [from_grid @ fn(to_grid @ x[i : i + step]) for i in range(0, b, step)]
        return torch.cat(parts) if len(parts) != 1 else parts[0]
