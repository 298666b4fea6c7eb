"""Small float64 SCN models with perturbed weights, for the physics tests."""

from __future__ import annotations

import torch

from equicat.models.scn import SCN, SCNConfig

from .physics import perturb_parameters

# ~0.05 s per structure; max_neighbors=None so that no neighbour-list tie can break symmetry
SMALL_SCN = dict(
    num_layers=2, lmax=3, sphere_channels=8, hidden_channels=16, edge_channels=16,
    num_distance_basis=32, distance_basis_width=2.0, cutoff=5.0, max_neighbors=None,
    num_sphere_samples=64,
)  # fmt: skip

# the paper's message variants (Table 4) and the two-resolution model (App. B.1)
VARIANTS = {
    "m0": dict(mmax=0, num_taps=1),
    "m1_1tap": dict(mmax=1, num_taps=1),
    "m1_4tap": dict(mmax=1, num_taps=4),
    "m1_sum": dict(mmax=1, num_taps=1, aggregation="sum"),  # "No 1x1 conv"
    "m1_2band": dict(mmax=1, num_taps=1, num_bands=2),
    "near_far": dict(mmax=1, num_taps=1, lmax=6, near_neighbors=6),
}


def small_scn(variant: str = "m1_1tap", seed: int = 0, **overrides) -> SCN:
    """A float64 SCN of :data:`SMALL_SCN` + a variant, weights perturbed, in eval mode."""
    torch.manual_seed(seed)
    cfg = SCNConfig(**{**SMALL_SCN, **VARIANTS[variant], **overrides})
    return perturb_parameters(SCN(cfg).double().eval(), 0.3, seed)
