"""SO(3) toolkit: harmonics, Wigner-D and edge frames, layouts, SO(2) layers, grids, norms."""

from equicat.so3.activations import GridMLP, SeparableS2Activation, SmoothLeakyReLU
from equicat.so3.fibonacci import (
    fibonacci_points,
    fit_quadrature_weights,
    min_distance,
    refined_fibonacci_points,
    repulsion_energy,
)
from equicat.so3.grid import SphereGrid, quadrature_weights
from equicat.so3.harmonics import num_coefficients, spherical_harmonics
from equicat.so3.harmonics_direct import DirectHarmonics, direct_spherical_harmonics
from equicat.so3.layout import CoefficientLayout, truncation_factor
from equicat.so3.linear import SO3Linear
from equicat.so3.norms import SeparableLayerNorm
from equicat.so3.radial import BesselBasis, GaussianBasis, PolynomialEnvelope, RadialMLP
from equicat.so3.so2 import SO2Linear
from equicat.so3.spherical_transform import SphericalTransform
from equicat.so3.wigner import WignerD, edge_frames, rotate_points

__all__ = [
    "BesselBasis",
    "CoefficientLayout",
    "DirectHarmonics",
    "GaussianBasis",
    "GridMLP",
    "PolynomialEnvelope",
    "RadialMLP",
    "SO2Linear",
    "SO3Linear",
    "SeparableLayerNorm",
    "SeparableS2Activation",
    "SmoothLeakyReLU",
    "SphereGrid",
    "SphericalTransform",
    "WignerD",
    "direct_spherical_harmonics",
    "edge_frames",
    "fibonacci_points",
    "fit_quadrature_weights",
    "min_distance",
    "num_coefficients",
    "quadrature_weights",
    "refined_fibonacci_points",
    "repulsion_energy",
    "rotate_points",
    "spherical_harmonics",
    "truncation_factor",
]
