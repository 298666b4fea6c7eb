"""Coefficient layouts: which (l, m) lives where in a feature tensor.

Features are ``[..., num_coefficients, channels]``. Two orders are used:

* **l-major** (the global frame): index ``l**2 + l + m``, degrees ascending, ``m`` from
  ``-l`` to ``l``. Optionally truncated to ``|m| <= mmax``.
* **m-major** (the edge frame, where SO(2) operations act on each order separately):
  ``m = 0`` for ``l = 0..lmax``, then for each ``m = 1..mmax`` the ``+m`` coefficients for
  ``l = m..lmax`` followed by the ``-m`` coefficients for the same degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CoefficientLayout", "truncation_factor"]


def truncation_factor(l_: int, mmax: int) -> float:
    """``sqrt((2l + 1) / (2 mmax + 1))`` for ``l > mmax``, else 1.

    The published EquiformerV2 weights expect degree-``l`` coefficients rotated back from an
    order-truncated edge frame to be scaled up by this factor (the share of the degree's
    ``2l + 1`` orders that was kept).
    """
    return ((2 * l_ + 1) / (2 * mmax + 1)) ** 0.5 if l_ > mmax else 1.0


def _index(l_: int, m: int) -> int:
    return l_ * l_ + l_ + m


@dataclass(frozen=True)
class CoefficientLayout:
    """Index lists for a degree/order truncation ``(lmax, mmax)``.

    Attributes:
        lmax: Largest degree.
        mmax: Largest order kept (``mmax <= lmax``).
        l_major: Full l-major indices of the kept coefficients, in l-major order.
        m_major: Full l-major indices of the kept coefficients, in m-major order.
        m_sizes: Number of degrees carrying order ``m`` (``lmax + 1 - m``), for ``m = 0..mmax``.
    """

    lmax: int
    mmax: int
    l_major: tuple[int, ...] = field(init=False)
    m_major: tuple[int, ...] = field(init=False)
    m_sizes: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.mmax <= self.lmax:
            raise ValueError(f"need 0 <= mmax <= lmax, got lmax={self.lmax}, mmax={self.mmax}")
        l_major = tuple(
            _index(l_, m)
            for l_ in range(self.lmax + 1)
            for m in range(-l_, l_ + 1)
            if abs(m) <= self.mmax
        )
        m_major = [_index(l_, 0) for l_ in range(self.lmax + 1)]
        for m in range(1, self.mmax + 1):
            m_major += [_index(l_, m) for l_ in range(m, self.lmax + 1)]
            m_major += [_index(l_, -m) for l_ in range(m, self.lmax + 1)]
        object.__setattr__(self, "l_major", l_major)
        object.__setattr__(self, "m_major", tuple(m_major))
        sizes = tuple(self.lmax + 1 - m for m in range(self.mmax + 1))
        object.__setattr__(self, "m_sizes", sizes)

    @property
    def size(self) -> int:
        """Number of kept coefficients."""
        return len(self.l_major)

    def truncation_scale(self, order: str = "m_major") -> list[float]:
        """:func:`truncation_factor` of each kept coefficient, in the given order."""
        idx = self.m_major if order == "m_major" else self.l_major
        return [truncation_factor(self.degree(i), self.mmax) for i in idx]

    @staticmethod
    def degree(index: int) -> int:
        """Degree ``l`` of a full l-major index."""
        return int(index**0.5 + 1e-9)
