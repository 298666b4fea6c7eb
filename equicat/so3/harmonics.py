"""Real spherical harmonics in the basis equicat uses throughout.

Basis convention: coefficient ``l**2 + l + m`` holds degree ``l``, order ``m`` in ``[-l, l]``.
The polar axis is **y** (so ``m = 0`` is symmetric about y) and the degree-1 block is
proportional to ``(x, y, z)``. This is the e3nn convention, which published EquiformerV2 /
eSCN / SCN weights were trained in, so imported checkpoints keep their meaning.

Construction: with ``(u, v, w) = (z, x, y)`` (w along the polar axis),

    Y_l^0  = N_l0 P_l^0(w)
    Y_l^m  = sqrt(2) N_lm Q_l^m(w) Re[(u + i v)^m]      (m > 0)
    Y_l^-m = sqrt(2) N_lm Q_l^m(w) Im[(u + i v)^m]      (m > 0)

where ``Q_l^m`` is the associated Legendre function divided by ``(1 - w^2)^{m/2}`` (no
Condon-Shortley phase), built by the standard three-term recursion, and
``N_lm = sqrt((2l + 1) (l - m)! / (l + m)!)`` gives "component" normalisation
(``sum_m Y_lm(r)^2 = 2l + 1`` on the unit sphere).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["spherical_harmonics", "num_coefficients"]


def num_coefficients(lmax: int) -> int:
    """Number of coefficients ``(lmax + 1)**2`` of a full degree-``lmax`` expansion."""
    return (lmax + 1) ** 2


def _norm(l_: int, m: int) -> float:
    return math.sqrt((2 * l_ + 1) * math.factorial(l_ - m) / math.factorial(l_ + m))


def spherical_harmonics(lmax: int, vectors: Tensor, normalize: bool = True) -> Tensor:
    """Evaluate all real spherical harmonics up to ``lmax``.

    Args:
        lmax: Largest degree.
        vectors: ``[..., 3]`` Cartesian directions (any length if ``normalize``).
        normalize: Divide the vectors by their length first.

    Returns:
        ``[..., (lmax + 1)**2]`` values, component-normalised (``sum_m Y_lm^2 = 2l + 1``).
    """
    if normalize:
        vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = vectors.unbind(-1)
    u, v, w = z, x, y  # polar axis is y
    # cos/sin parts of (u + i v)^m, m = 0..lmax
    cm = [torch.ones_like(u)]
    sm = [torch.zeros_like(u)]
    for _ in range(lmax):
        c, s = cm[-1], sm[-1]
        cm.append(u * c - v * s)
        sm.append(u * s + v * c)
    out: list[Tensor | None] = [None] * num_coefficients(lmax)
    for m in range(lmax + 1):
        # Q_m^m = (2m - 1)!!, Q_{m+1}^m = (2m + 1) w Q_m^m, then the three-term recursion
        q_prev = torch.full_like(w, float(math.prod(range(1, 2 * m, 2))))
        q_prev2 = None
        for l_ in range(m, lmax + 1):
            if l_ == m:
                q = q_prev
            elif l_ == m + 1:
                q = (2 * m + 1) * w * q_prev
            else:
                q = ((2 * l_ - 1) * w * q_prev - (l_ + m - 1) * q_prev2) / (l_ - m)
            if l_ > m:
                q_prev2, q_prev = q_prev, q
            n = _norm(l_, m)
            if m == 0:
                out[l_ * l_ + l_] = n * q
            else:
                out[l_ * l_ + l_ + m] = math.sqrt(2.0) * n * q * cm[m]
                out[l_ * l_ + l_ - m] = math.sqrt(2.0) * n * q * sm[m]
    return torch.stack(out, dim=-1)  # type: ignore[arg-type]
