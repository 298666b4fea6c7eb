"""Small models and structures shared by the checkpoint and calculator tests."""

from __future__ import annotations

import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule
from ase.constraints import FixAtoms
from torch import nn

from equicat.models import build

TINY = dict(
    lmax=2,
    mmax=1,
    num_layers=1,
    sphere_channels=8,
    attn_hidden_channels=8,
    num_heads=2,
    attn_alpha_channels=4,
    attn_value_channels=2,
    ffn_hidden_channels=8,
    edge_channels=8,
    cutoff=4.0,
)


def tiny_model(seed: int = 0, **overrides) -> nn.Module:
    """A float32 one-block EquiformerV2 with weights perturbed so nothing is trivially zero."""
    torch.manual_seed(seed)
    model = build("equiformer_v2", **{**TINY, **overrides})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def cu_slab(seed: int = 0, fixed: tuple[int, ...] = ()) -> Atoms:
    """Cu(111) 2x2x3 + CO (14 atoms), rattled; ``fixed`` atoms get a FixAtoms constraint."""
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, molecule("CO"), 1.9, "fcc")
    slab.rattle(0.03, seed=seed)
    if fixed:
        slab.set_constraint(FixAtoms(indices=list(fixed)))
    return slab
