"""eSCN (Passaro & Zitnick, 2023): SO(3) convolutions reduced to SO(2), the full model."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from equicat.models.escn.blocks import EdgeContext, LayerBlock, MessageBlock, SphereHead
from equicat.models.escn.config import EscnConfig
from equicat.models.escn.grouped import GroupedEdges
from equicat.models.heads import conservative_outputs
from equicat.so3 import (
    CoefficientLayout,
    GaussianBasis,
    SphereGrid,
    WignerD,
    fibonacci_points,
    spherical_harmonics,
)
from equicat.so3.constants import ConstantCache

if TYPE_CHECKING:
    from equicat.data import AtomicGraph

__all__ = ["Escn"]


class Escn(nn.Module):
    """eSCN on an :class:`~equicat.data.AtomicGraph`.

    Node features ``[N, (L+1)^2, C]`` start as an atom-type embedding on degree 0. Each layer
    computes SO(2) messages in the edge frames (:class:`~equicat.models.escn.blocks.MessageBlock`)
    and updates every node by an MLP on the sphere grid of ``[x, messages]``; after the first
    layer the update is added to ``x``. The heads evaluate the features at
    ``num_sphere_samples`` points ``p_s`` on the sphere and average an MLP over them: atomic
    energies ``mean_s h_E(x(p_s))`` and direct forces ``mean_s h_F(x(p_s)) p_s``.

    ``forward(graph)`` returns ``{"energy": [B] eV, "forces": [N, 3] eV/Å}`` (and, in
    conservative mode with ``compute_stress=True``, ``"stress": [B, 3, 3]`` eV/Å^3). Energies
    are ``energy_std * sum_i E_i / energy_divisor + energy_mean``; direct forces are
    ``force_std * F``.

    The sample points and their harmonics are buffers (``sphere_points [S, 3]``,
    ``sphere_harmonics [S, n]``) so that imported weights bring their own.

    Args:
        config: Hyper-parameters.
    """

    def __init__(self, config: EscnConfig) -> None:
        super().__init__()
        self.config = cfg = config
        c = cfg.sphere_channels
        self.layout = CoefficientLayout(cfg.lmax, cfg.mmax)
        self.atom_embedding = nn.Embedding(cfg.max_num_elements, c)
        nn.init.uniform_(self.atom_embedding.weight, -0.001, 0.001)
        self.distance_basis = GaussianBasis(
            0.0, cfg.cutoff, cfg.num_distance_basis, cfg.distance_basis_width
        )
        self.wigner = WignerD(cfg.lmax)
        edge_grid = SphereGrid(self.layout, *cfg.edge_grid, "m_major", "integral")
        full = CoefficientLayout(cfg.lmax, cfg.lmax)
        node_grid = SphereGrid(full, *cfg.node_grid, "l_major", "integral")
        self.layers = nn.ModuleList(
            LayerBlock(
                MessageBlock(
                    self.layout,
                    c,
                    cfg.hidden_channels,
                    cfg.edge_channels,
                    cfg.num_distance_basis,
                    cfg.max_num_elements,
                    edge_grid,
                ),
                node_grid,
                c,
            )
            for _ in range(cfg.num_layers)
        )
        # compute the first SO(2) layers per node (same function, fewer FLOPs; .grouped)
        self.node_side_first_layer = True
        self.energy_head = SphereHead(c)
        self.force_head = SphereHead(c) if cfg.forces == "direct" else None
        points = fibonacci_points(cfg.num_sphere_samples)
        # orthonormal harmonics: sum_i c_i Y_i(p) is the value of the expansion at p
        harmonics = spherical_harmonics(cfg.lmax, points) / math.sqrt(4 * math.pi)
        self.register_buffer("sphere_points", points.float())
        self.register_buffer("sphere_harmonics", harmonics.float())
        self.register_buffer(
            "rot_rows", torch.tensor(self.layout.m_major, dtype=torch.long), persistent=False
        )
        table = torch.zeros(cfg.max_num_elements, dtype=torch.float64)
        table[: len(cfg.element_energies)] = torch.tensor(cfg.element_energies, dtype=torch.float64)
        self.const = ConstantCache(element_energies=table)

    @property
    def cutoff(self) -> float:
        """Neighbour cutoff, Å."""
        return self.config.cutoff

    @property
    def max_neighbors(self) -> int | None:
        """Neighbours kept per atom."""
        return self.config.max_neighbors

    @property
    def conservative(self) -> bool:
        """Whether forces are ``-dE/dr`` (and stress available)."""
        return self.config.forces == "conservative"

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        c = self.config
        return (
            f"lmax={c.lmax}, mmax={c.mmax}, channels={c.sphere_channels}, "
            f"hidden={c.hidden_channels}, layers={c.num_layers}, cutoff={c.cutoff} Å, "
            f"forces={c.forces}"
        )

    def _features(self, graph: AtomicGraph, vec: Tensor) -> Tensor:
        """Backbone: node features ``[N, (L+1)^2, C]``."""
        z = graph.atomic_numbers
        source, target = graph.edge_index
        rot = self.wigner(vec)[:, self.rot_rows]  # [E, n_red, n]
        basis = self.distance_basis(vec.norm(dim=-1))  # [E, K]
        grouped = (
            GroupedEdges.build(rot, self.layout, source, target, graph.num_atoms)
            if self.node_side_first_layer
            else None
        )
        ctx = EdgeContext(
            source, target, z[source], z[target], basis, rot, graph.num_atoms, grouped
        )
        x = vec.new_zeros(graph.num_atoms, (self.config.lmax + 1) ** 2, self.config.sphere_channels)
        x[:, 0] = self.atom_embedding(z)
        for i, layer in enumerate(self.layers):
            x = layer(x, ctx) if i == 0 else x + layer(x, ctx)
        return x

    def _samples(self, x: Tensor) -> Tensor:
        """Feature values at the sphere samples: ``[N, n, C] -> [N, S, C]``."""
        return torch.matmul(self.sphere_harmonics.to(x.dtype), x)

    def _energy(self, graph: AtomicGraph, vec: Tensor) -> tuple[Tensor, Tensor]:
        values = self._samples(self._features(graph, vec))
        atomic = self.energy_head(values).mean(dim=1)  # [N]
        e = vec.new_zeros(graph.num_systems).index_add_(0, graph.batch, atomic)
        e = e / self.config.energy_divisor * self.config.energy_std + self.config.energy_mean
        if self.config.element_energies:
            ref = self.const.get("element_energies", e)[graph.atomic_numbers]  # [N]
            e = e + torch.zeros_like(e).index_add_(0, graph.batch, ref)
        return e, values

    def forward(self, graph: AtomicGraph, compute_stress: bool = False) -> dict[str, Tensor]:
        """Predict energies and forces (and stress, conservative mode only).

        Args:
            graph: Batch of systems with edges built for this model's cutoff.
            compute_stress: Return ``stress`` (conservative mode only).

        Returns:
            ``{"energy": [B], "forces": [N, 3], "stress"?: [B, 3, 3]}`` in eV, eV/Å, eV/Å^3.
        """
        self._check_elements(graph.atomic_numbers)
        if self.conservative:
            return conservative_outputs(
                lambda vec: self._energy(graph, vec)[0], graph, compute_stress, self.training
            )
        if compute_stress:
            raise ValueError(
                "stress needs a conservative model (forces='conservative'); this one predicts "
                "forces directly"
            )
        energy, values = self._energy(graph, graph.edge_vectors())
        assert self.force_head is not None
        weights = self.force_head(values)  # [N, S]
        forces = weights @ self.sphere_points.to(values.dtype) / values.shape[1]  # [N, 3]
        return {"energy": energy, "forces": forces * self.config.force_std}

    def _check_elements(self, z: Tensor) -> None:
        bad = (z <= 0) | (z >= self.config.max_num_elements)
        if bool(bad.any()):
            idx = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"atom {idx} has atomic number {int(z[idx])}, outside this model's range "
                f"1..{self.config.max_num_elements - 1}"
            )
