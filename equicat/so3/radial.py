"""Radial bases, envelopes and radial MLPs."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from equicat.so3.constants import ConstantCache

__all__ = ["GaussianBasis", "BesselBasis", "PolynomialEnvelope", "RadialMLP"]


class GaussianBasis(nn.Module):
    """Gaussians ``exp(-(d - mu_k)^2 / (2 (w delta)^2))`` on ``num`` centres in ``[start, stop]``.

    ``delta`` is the centre spacing and ``w`` the width factor (EquiformerV2: 600 centres on
    ``[0, cutoff]``, ``w = 2``).

    Shapes: ``[E] Å -> [E, num]``.
    """

    def __init__(self, start: float, stop: float, num: int, width: float = 2.0) -> None:
        super().__init__()
        self.start, self.stop, self.num, self.width = start, stop, num, width
        centres = torch.linspace(start, stop, num, dtype=torch.float64)
        self.const = ConstantCache(centres=centres)
        delta = (stop - start) / (num - 1)
        self.coeff = -0.5 / (width * delta) ** 2

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"[{self.start}, {self.stop}] Å, num={self.num}, width={self.width}"

    def forward(self, d: Tensor) -> Tensor:
        """Expand distances (shapes in the class docstring)."""
        return torch.exp(self.coeff * (d[:, None] - self.const.get("centres", d)) ** 2)


class BesselBasis(nn.Module):
    """``sqrt(2/c) sin(k pi d / c) / d``, ``k = 1..num`` (DimeNet / NequIP radial basis).

    Shapes: ``[E] Å -> [E, num]``.
    """

    def __init__(self, cutoff: float, num: int = 8, trainable: bool = False) -> None:
        super().__init__()
        self.cutoff = cutoff
        freq = torch.arange(1, num + 1, dtype=torch.float64) * math.pi / cutoff
        self.trainable = trainable
        if trainable:
            self.freq = nn.Parameter(freq.float())
        else:
            self.const = ConstantCache(freq=freq)

    def forward(self, d: Tensor) -> Tensor:
        """Expand distances (shapes in the class docstring)."""
        d = d[:, None]
        freq = self.freq.to(d.dtype) if self.trainable else self.const.get("freq", d)
        return math.sqrt(2 / self.cutoff) * torch.sin(freq * d) / d


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff ``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``.

    ``x = d / cutoff``; ``u`` and its first two derivatives vanish at ``x = 1``; zero beyond.
    Evaluated as a polynomial in ``t = 1 - x`` (whose coefficients of ``t^0..t^2`` vanish)
    by Horner's rule, which stays accurate and non-negative next to the cutoff, where the
    monomial form above cancels catastrophically.

    Shapes: ``[E] Å -> [E]``.
    """

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff, self.p = cutoff, p
        x = np.polynomial.Polynomial([0.0, 1.0])
        u = (
            1
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        )
        coeffs = u(np.polynomial.Polynomial([1.0, -1.0])).coef  # u(1 - t) in powers of t
        coeffs[:3] = 0.0  # exactly zero in exact arithmetic
        self.coeffs = [float(c) for c in coeffs]

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"cutoff={self.cutoff} Å, p={self.p}"

    def forward(self, d: Tensor) -> Tensor:
        """Evaluate the envelope (shapes in the class docstring)."""
        t = 1 - d / self.cutoff
        u = torch.zeros_like(t)
        for c in reversed(self.coeffs):
            u = u * t + c
        return torch.where(t > 0, u, torch.zeros_like(u))


class RadialMLP(nn.Module):
    """``Linear -> LayerNorm -> SiLU`` blocks, then a final Linear.

    Args:
        sizes: Widths ``[in, hidden..., out]``.

    Shapes: ``[E, sizes[0]] -> [E, sizes[-1]]``.
    """

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers += [nn.LayerNorm(sizes[i + 1]), nn.SiLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP (shapes in the class docstring)."""
        return self.net(x)
