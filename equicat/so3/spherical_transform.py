"""Spherical Fourier transform pair on a finite point set (EST's spatial representation).

A feature with coefficients ``c_i`` (l-major, all ``(L + 1)^2`` degrees up to ``L``) is the
function ``f(u) = sum_i c_i Y_i(u)`` on the sphere (equicat's component-normalised harmonics,
``int Y_i Y_j dOmega = 4 pi delta_ij``). The forward transform samples ``f`` at ``P`` points
``u_k``; the inverse recovers coefficients from samples, either by quadrature

    c_i = (1 / 4 pi) sum_k w_k Y_i(u_k) f(u_k)             (``inverse="quadrature"``)

with weights ``w_k`` that integrate the harmonics exactly, or by the least-squares fit
``c = pinv(Y) f`` (``inverse="lstsq"``). Both are exact on band-limited samples once the point
set resolves degree ``L``: quadrature needs weights exact to degree ``2 L``, the fit needs
``P >= (L + 1)^2`` points in general position. On samples that are *not* band-limited (the
output of a point-wise non-linearity or of attention across points) the two differ: the
quadrature inverse approximates the integral projection, the fit minimises the residual at
the points.

EST's eq. (12) redefines the conjugate harmonics of the inverse transform for its sampling;
the text available to us lost the equation, so the weights here are our reading: the point
set's own quadrature (fitted weights for Fibonacci points, the equiangular weights of
:mod:`equicat.so3.grid` for the lat-long grid).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equicat.so3.constants import ConstantCache
from equicat.so3.fibonacci import fibonacci_points, fit_quadrature_weights, refined_fibonacci_points
from equicat.so3.grid import lat_long_points, quadrature_weights
from equicat.so3.harmonics import num_coefficients, spherical_harmonics

__all__ = ["SphericalTransform"]


class SphericalTransform(nn.Module):
    """Coefficients ``[..., (L+1)^2, C]`` <-> samples ``[..., P, C]`` on a fixed point set.

    Build with :meth:`fibonacci` or :meth:`lat_long` (or directly from points and weights).
    Constants are float64 masters cast per device and dtype (:class:`ConstantCache`), so a
    float64 model gets float64 transforms.

    Args:
        lmax: Largest degree ``L`` of the coefficients.
        points: ``[P, 3]`` unit vectors.
        weights: ``[P]`` quadrature weights, steradian (sum ``4 pi``).
        inverse: ``"quadrature"`` or ``"lstsq"`` (module docstring).
        kind: Name of the point set, for ``repr``.
    """

    def __init__(
        self,
        lmax: int,
        points: Tensor,
        weights: Tensor,
        inverse: str = "quadrature",
        kind: str = "custom",
    ) -> None:
        super().__init__()
        if inverse not in ("quadrature", "lstsq"):
            raise ValueError(f"inverse must be 'quadrature' or 'lstsq', got {inverse!r}")
        self.lmax, self.inverse, self.kind = lmax, inverse, kind
        points = points.to(torch.float64)
        points = points / points.norm(dim=-1, keepdim=True)
        weights = weights.to(torch.float64)
        y = spherical_harmonics(lmax, points)  # [P, n]
        if inverse == "quadrature":
            inv = (y * weights[:, None]).T / (4 * math.pi)  # [n, P]
        else:
            inv = torch.linalg.pinv(y)  # [n, P]
        self.num_points = len(points)
        self.const = ConstantCache(
            points=points, weights=weights, forward=y, inverse=inv, cos=points @ points.T
        )

    @classmethod
    def fibonacci(
        cls, lmax: int, n: int, refined: bool = True, inverse: str = "quadrature", **refine
    ) -> SphericalTransform:
        """Transform on ``n`` Fibonacci points (refined by repulsion unless ``refined=False``).

        Quadrature weights are fitted to degree ``2 lmax`` (least squares when ``n`` is too
        small for exactness). ``refine`` goes to :func:`refined_fibonacci_points`.
        """
        points = refined_fibonacci_points(n, **refine) if refined else fibonacci_points(n)
        weights = fit_quadrature_weights(points, 2 * lmax)
        kind = f"fibonacci{'-refined' if refined else ''}({n})"
        return cls(lmax, points, weights, inverse, kind)

    @classmethod
    def lat_long(
        cls, lmax: int, res_beta: int, res_alpha: int, inverse: str = "quadrature"
    ) -> SphericalTransform:
        """Transform on the lat-long grid of :class:`~equicat.so3.SphereGrid` (same points).

        Weights: the equiangular polar weights ``w_b`` (exact for degree ``< res_beta`` in
        ``cos beta``) times ``2 pi / res_alpha`` per azimuth.
        """
        points = lat_long_points(res_beta, res_alpha)
        w_beta = torch.from_numpy(quadrature_weights(res_beta))
        weights = (w_beta * (2 * math.pi / res_alpha)).repeat_interleave(res_alpha)
        return cls(lmax, points, weights, inverse, f"lat-long({res_beta}x{res_alpha})")

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return (
            f"lmax={self.lmax}, coefficients={num_coefficients(self.lmax)}, "
            f"points={self.num_points} ({self.kind}), inverse={self.inverse}"
        )

    def points(self, like: Tensor | None = None) -> Tensor:
        """``[P, 3]`` sample directions (float64, or ``like``'s dtype and device)."""
        return self.const.get("points", like) if like is not None else self.const._master["points"]

    def weights(self) -> Tensor:
        """``[P]`` float64 quadrature weights, steradian."""
        return self.const._master["weights"]

    def cos_angles(self, like: Tensor) -> Tensor:
        """``[P, P]`` dot products ``<u_p, u_q>`` of the sample directions."""
        return self.const.get("cos", like)

    def rotated(self, rotation: Tensor) -> SphericalTransform:
        """The same transform on the points ``R u_k`` (same weights and inverse kind).

        Rotating the point set together with the input makes any point-wise or
        orientation-invariant operation exactly equivariant, which isolates sampling error.
        """
        points = self.points() @ rotation.to(torch.float64).T
        return type(self)(self.lmax, points, self.weights(), self.inverse, f"{self.kind} rotated")

    def to_sphere(self, x: Tensor) -> Tensor:
        """``[..., (L+1)^2, C]`` coefficients -> ``[..., P, C]`` samples ``f(u_k)``."""
        return torch.matmul(self.const.get("forward", x), x)

    def from_sphere(self, f: Tensor) -> Tensor:
        """``[..., P, C]`` samples -> ``[..., (L+1)^2, C]`` coefficients."""
        return torch.matmul(self.const.get("inverse", f), f)
