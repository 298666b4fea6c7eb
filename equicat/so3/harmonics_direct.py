"""Direct closed-form real spherical harmonics for any set of degrees ``l <= 10``.

Every degree is evaluated on its own, without a recursion through lower degrees (Lee, Galkin,
Miret, "Deconstructing equivariant representations", App. A.2), so a set such as
``[0, 3, 4, 5, 6]`` costs about as much per degree as ``[0, 1, 2]``.

On the unit sphere ``Y_l^m`` is a homogeneous polynomial of degree ``l`` in ``(x, y, z)``:
with ``(u, v, w) = (z, x, y)`` (polar axis **y**, the e3nn convention also used by
:func:`equicat.so3.harmonics.spherical_harmonics`),

    Y_l^{+-m} = c_lm Q_l^m(w) {Re, Im}[(u + i v)^m],
    Q_l^m(w)  = sum_k (-1)^k (2l - 2k)! / (2^l k! (l - k)! (l - m - 2k)!) w^(l-m-2k),

and each power ``w^(l-m-2k)`` is made homogeneous by multiplying it with
``(u^2 + v^2 + w^2)^k = 1``. The coefficients of the ``(l+1)(l+2)/2`` monomials
``x^a y^b z^c`` (``a + b + c = l``) are computed once in exact rational arithmetic and
stored as a float64 tensor ``C_l [a, b, 2l + 1]``; evaluation is
``Y_l = sum_a x^a (sum_b y^b z^(l-a-b) C_l[a, b])`` (small matrix products per ``a``).
Normalisation ``c_lm = sqrt((2l+1)(l-m)!/(l+m)!)``
(times ``sqrt 2`` for ``m > 0``) is e3nn's "component" one (``sum_m Y_lm^2 = 2l + 1``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import cache

import torch
from torch import Tensor, nn

from equicat.so3.constants import ConstantCache

__all__ = ["LMAX_DIRECT", "DirectHarmonics", "direct_spherical_harmonics"]

LMAX_DIRECT = 10

Poly = dict[tuple[int, int, int], Fraction]  # (a, b, c) -> coefficient of x^a y^b z^c


def _mul(p: Poly, q: Poly) -> Poly:
    out: Poly = {}
    for (a1, b1, c1), s in p.items():
        for (a2, b2, c2), t in q.items():
            key = (a1 + a2, b1 + b2, c1 + c2)
            out[key] = out.get(key, Fraction(0)) + s * t
    return out


def _pow(p: Poly, n: int) -> Poly:
    out: Poly = {(0, 0, 0): Fraction(1)}
    for _ in range(n):
        out = _mul(out, p)
    return out


def _legendre_part(l_: int, m: int) -> Poly:
    """``Q_l^m(w)`` made homogeneous of degree ``l - m`` with ``(x^2+y^2+z^2)^k``."""
    w: Poly = {(0, 1, 0): Fraction(1)}
    r2: Poly = {(2, 0, 0): Fraction(1), (0, 2, 0): Fraction(1), (0, 0, 2): Fraction(1)}
    out: Poly = {}
    for k in range((l_ - m) // 2 + 1):
        coeff = Fraction(
            (-1) ** k * math.factorial(2 * l_ - 2 * k),
            2**l_ * math.factorial(k) * math.factorial(l_ - k) * math.factorial(l_ - m - 2 * k),
        )
        term = _mul(_pow(w, l_ - m - 2 * k), _pow(r2, k))
        for key, val in term.items():
            out[key] = out.get(key, Fraction(0)) + coeff * val
    return out


def _azimuthal_part(m: int) -> tuple[Poly, Poly]:
    """``Re`` and ``Im`` of ``(u + i v)^m`` with ``u = z``, ``v = x``."""
    re: Poly = {}
    im: Poly = {}
    for j in range(m + 1):
        key = (j, 0, m - j)  # x^j z^(m-j)
        val = Fraction(math.comb(m, j))
        if j % 2 == 0:
            re[key] = val * (-1) ** (j // 2)
        else:
            im[key] = val * (-1) ** (j // 2)
    return re, im


@cache
def _coefficients(l_: int) -> Tensor:
    """``[l+1, l+1, 2l+1]`` float64: ``C[a, b]`` multiplies ``x^a y^b z^(l-a-b)``."""
    if not 0 <= l_ <= LMAX_DIRECT:
        raise ValueError(f"direct spherical harmonics cover degrees 0..{LMAX_DIRECT}, got {l_}")
    out = torch.zeros(l_ + 1, l_ + 1, 2 * l_ + 1, dtype=torch.float64)
    for m in range(l_ + 1):
        norm = math.sqrt((2 * l_ + 1) * math.factorial(l_ - m) / math.factorial(l_ + m))
        q = _legendre_part(l_, m)
        re, im = _azimuthal_part(m)
        parts = [(l_, re, norm)] if m == 0 else [
            (l_ + m, re, math.sqrt(2.0) * norm), (l_ - m, im, math.sqrt(2.0) * norm)
        ]  # fmt: skip
        for col, az, scale in parts:
            for key, val in _mul(q, az).items():
                out[key[0], key[1], col] += float(val) * scale
    return out


def _powers(t: Tensor, n: int) -> Tensor:
    """``[..., n + 1]`` powers ``t^0 .. t^n``."""
    p = [torch.ones_like(t)]
    for _ in range(n):
        p.append(p[-1] * t)
    return torch.stack(p, dim=-1)


def _check_degrees(degrees: Sequence[int]) -> tuple[int, ...]:
    degrees = tuple(int(d) for d in degrees)
    bad = [d for d in degrees if not 0 <= d <= LMAX_DIRECT]
    if not degrees or bad:
        raise ValueError(
            f"degrees must be a non-empty set within 0..{LMAX_DIRECT}, got {list(degrees)}"
        )
    return degrees


def _evaluate(degrees: tuple[int, ...], unit: Tensor, coeffs: Sequence[Tensor]) -> Tensor:
    """``Y_l = sum_a x^a sum_b y^b z^(l-a-b) C_l[a, b]`` for each listed degree on its own."""
    x, y, z = unit.unbind(-1)
    top = max(degrees)
    px, py, pz = _powers(x, top), _powers(y, top), _powers(z, top)  # [..., top + 1] each
    out = []
    for l_, c in zip(degrees, coeffs, strict=True):
        block = None
        for a in range(l_ + 1):
            m = l_ - a
            yz = py[..., : m + 1] * pz[..., : m + 1].flip(-1)  # [..., m + 1]: y^b z^(m-b)
            term = px[..., a, None] * (yz @ c[a, : m + 1])  # [..., 2l + 1]
            block = term if block is None else block + term
        out.append(block)
    return torch.cat(out, dim=-1)


def direct_spherical_harmonics(
    degrees: Sequence[int], vectors: Tensor, normalize: bool = True
) -> Tensor:
    """Real spherical harmonics of the listed degrees, each evaluated directly.

    Args:
        degrees: Degrees in ``0..10``, in the output order (need not be contiguous).
        vectors: ``[..., 3]`` Cartesian directions (any length if ``normalize``).
        normalize: Divide the vectors by their length first.

    Returns:
        ``[..., sum(2l + 1)]``, the degree blocks concatenated in the order given; within a
        block ``m = -l..l`` as in e3nn, component-normalised.
    """
    degrees = _check_degrees(degrees)
    if normalize:
        vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    coeffs = [_coefficients(l_).to(device=vectors.device, dtype=vectors.dtype) for l_ in degrees]
    return _evaluate(degrees, vectors, coeffs)


class DirectHarmonics(nn.Module):
    """Module form of :func:`direct_spherical_harmonics` (coefficients cast once per dtype).

    Shapes: ``[..., 3] -> [..., sum(2l + 1)]``.
    """

    def __init__(self, degrees: Sequence[int], normalize: bool = True) -> None:
        super().__init__()
        self.degrees = _check_degrees(degrees)
        self.normalize = normalize
        self.const = ConstantCache(**{f"c{i}": _coefficients(l_) for i, l_ in
                                      enumerate(self.degrees)})  # fmt: skip

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"degrees={list(self.degrees)}, normalize={self.normalize}"

    def forward(self, vectors: Tensor) -> Tensor:
        """Evaluate (shapes in the class docstring)."""
        if self.normalize:
            vectors = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        coeffs = [self.const.get(f"c{i}", vectors) for i in range(len(self.degrees))]
        return _evaluate(self.degrees, vectors, coeffs)
