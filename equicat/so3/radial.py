"""Radial bases, envelopes and radial MLPs."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

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
        self.register_buffer("centres", torch.linspace(start, stop, num), persistent=False)
        delta = (stop - start) / (num - 1)
        self.coeff = -0.5 / (width * delta) ** 2

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"[{self.start}, {self.stop}] Å, num={self.num}, width={self.width}"

    def forward(self, d: Tensor) -> Tensor:
        """Expand distances (shapes in the class docstring)."""
        return torch.exp(self.coeff * (d[:, None] - self.centres.to(d.dtype)) ** 2)


class BesselBasis(nn.Module):
    """``sqrt(2/c) sin(k pi d / c) / d``, ``k = 1..num`` (DimeNet / NequIP radial basis).

    Shapes: ``[E] Å -> [E, num]``.
    """

    def __init__(self, cutoff: float, num: int = 8, trainable: bool = False) -> None:
        super().__init__()
        self.cutoff = cutoff
        freq = torch.arange(1, num + 1) * math.pi / cutoff
        self.freq = nn.Parameter(freq, requires_grad=trainable)

    def forward(self, d: Tensor) -> Tensor:
        """Expand distances (shapes in the class docstring)."""
        d = d[:, None]
        return math.sqrt(2 / self.cutoff) * torch.sin(self.freq.to(d.dtype) * d) / d


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff ``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)``.

    ``x = d / cutoff``; ``u`` and its first two derivatives vanish at ``x = 1``; zero beyond.

    Shapes: ``[E] Å -> [E]``.
    """

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff, self.p = cutoff, p

    def forward(self, d: Tensor) -> Tensor:
        """Evaluate the envelope (shapes in the class docstring)."""
        p = self.p
        x = d / self.cutoff
        u = (
            1
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        )
        return torch.where(x < 1, u, torch.zeros_like(u))


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
