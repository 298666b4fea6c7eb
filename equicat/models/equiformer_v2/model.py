"""EquiformerV2 (Liao et al., 2024): the full model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from equicat.models.equiformer_v2.attention import EdgeContext, GraphAttention
from equicat.models.equiformer_v2.config import EquiformerV2Config
from equicat.models.equiformer_v2.embedding import EdgeDegreeEmbedding
from equicat.models.equiformer_v2.ffn import FeedForward
from equicat.models.equiformer_v2.heads import DirectForceHead, EnergyHead
from equicat.models.heads import conservative_outputs
from equicat.so3 import (
    CoefficientLayout,
    GaussianBasis,
    PolynomialEnvelope,
    SeparableLayerNorm,
    WignerD,
)
from equicat.so3.constants import ConstantCache

if TYPE_CHECKING:
    from equicat.data import AtomicGraph

__all__ = ["EquiformerV2", "TransformerBlock", "graph_attention"]


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm(x))`` then ``x + ffn(norm(x))``.

    Shapes: ``[N, (L+1)^2, C] -> [N, (L+1)^2, C]``.
    """

    def __init__(self, cfg: EquiformerV2Config) -> None:
        super().__init__()
        c = cfg.sphere_channels
        self.norm_attn = SeparableLayerNorm(cfg.lmax, c)
        self.attn = graph_attention(cfg, out_channels=c)
        self.norm_ffn = SeparableLayerNorm(cfg.lmax, c)
        self.ffn = FeedForward(cfg.lmax, c, cfg.ffn_hidden_channels, c, cfg.grid_resolution)

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Apply the block (shapes in the class docstring)."""
        x = x + self.attn(self.norm_attn(x), ctx)
        return x + self.ffn(self.norm_ffn(x))


def graph_attention(cfg: EquiformerV2Config, out_channels: int) -> GraphAttention:
    """The graph-attention (message) block of ``cfg`` with ``out_channels`` output channels."""
    return GraphAttention(
        lmax=cfg.lmax,
        mmax=cfg.mmax,
        channels=cfg.sphere_channels,
        hidden_channels=cfg.attn_hidden_channels,
        num_heads=cfg.num_heads,
        alpha_channels=cfg.attn_alpha_channels,
        value_channels=cfg.attn_value_channels,
        out_channels=out_channels,
        num_elements=cfg.max_num_elements,
        basis_size=cfg.num_distance_basis,
        edge_channels=cfg.edge_channels,
        grid_resolution=cfg.grid_resolution,
    )


class EquiformerV2(nn.Module):
    """EquiformerV2 on an :class:`~equicat.data.AtomicGraph`.

    ``forward(graph)`` returns ``{"energy": [B] eV, "forces": [N, 3] eV/Å}`` and, in
    conservative mode with ``compute_stress=True``, ``"stress": [B, 3, 3]`` eV/Å^3.
    Energies are ``energy_std * E_net + energy_mean``; direct forces are
    ``force_std * F_net``.

    Args:
        config: Hyper-parameters.
    """

    def __init__(self, config: EquiformerV2Config) -> None:
        super().__init__()
        self.config = cfg = config
        self.layout = CoefficientLayout(cfg.lmax, cfg.mmax)
        self.atom_embedding = nn.Embedding(cfg.max_num_elements, cfg.sphere_channels)
        self.distance_basis = GaussianBasis(
            0.0, cfg.cutoff, cfg.num_distance_basis, cfg.distance_basis_width
        )
        self.wigner = WignerD(cfg.lmax)
        self.envelope = (
            PolynomialEnvelope(cfg.cutoff, cfg.envelope_exponent)
            if cfg.envelope == "polynomial"
            else None
        )
        self.edge_degree = EdgeDegreeEmbedding(
            cfg.lmax,
            cfg.sphere_channels,
            cfg.max_num_elements,
            cfg.num_distance_basis,
            cfg.edge_channels,
            cfg.avg_degree,
            cfg.mmax,
        )
        self.blocks = nn.ModuleList(self._make_block(cfg) for _ in range(cfg.num_layers))
        self.norm = SeparableLayerNorm(cfg.lmax, cfg.sphere_channels)
        self.energy_head = EnergyHead(
            cfg.lmax,
            cfg.sphere_channels,
            cfg.ffn_hidden_channels,
            cfg.grid_resolution,
            cfg.avg_num_nodes,
        )
        self.force_head = (
            DirectForceHead(graph_attention(cfg, 1)) if cfg.forces == "direct" else None
        )
        self.register_buffer(
            "rot_rows", torch.tensor(self.layout.m_major, dtype=torch.long), persistent=False
        )

        table = torch.zeros(cfg.max_num_elements, dtype=torch.float64)
        table[: len(cfg.element_energies)] = torch.tensor(cfg.element_energies, dtype=torch.float64)
        scale = torch.tensor(self.layout.truncation_scale("m_major"), dtype=torch.float64)
        # float64 constants, cast per call: element references [Z], back-rotation scale [n_red]
        self.const = ConstantCache(element_energies=table, back_scale=scale)

    def _make_block(self, cfg: EquiformerV2Config) -> nn.Module:
        """One layer ``forward(x [N, n, C], ctx) -> [N, n, C]``; subclasses swap the update."""
        return TransformerBlock(cfg)

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
            f"layers={c.num_layers}, cutoff={c.cutoff} Å, forces={c.forces}"
        )

    def _features(self, graph: AtomicGraph, vec: Tensor) -> tuple[Tensor, EdgeContext]:
        """Backbone: node features ``[N, (L+1)^2, C]`` after the final norm."""
        z = graph.atomic_numbers
        source, target = graph.edge_index
        dist = vec.norm(dim=-1)
        unit = vec / dist[:, None]
        rot = self.wigner(vec)[:, self.rot_rows]  # [E, n_red, n]
        rot_back = rot.transpose(1, 2) * self.const.get("back_scale", rot)  # [E, n, n_red]
        basis = self.distance_basis(dist)
        weight = None if self.envelope is None else self.envelope(dist)
        ctx = EdgeContext(
            source, target, z[source], z[target], basis, rot, rot_back, graph.num_atoms, weight
        )
        x = vec.new_zeros(graph.num_atoms, (self.config.lmax + 1) ** 2, self.config.sphere_channels)
        x[:, 0] = self.atom_embedding(z)
        x = x + self.edge_degree(
            ctx.basis, ctx.z_src, ctx.z_tgt, unit, target, graph.num_atoms, weight
        )
        for block in self.blocks:
            x = block(x, ctx)
        return self.norm(x), ctx

    def _energy(self, graph: AtomicGraph, vec: Tensor) -> tuple[Tensor, Tensor, EdgeContext]:
        x, ctx = self._features(graph, vec)
        e = self.energy_head(x, graph.batch, graph.num_systems)
        e = e * self.config.energy_std + self.config.energy_mean
        if self.config.element_energies:
            # [N] per-atom reference, summed per system
            ref = self.const.get("element_energies", e)[graph.atomic_numbers]
            e = e + torch.zeros_like(e).index_add_(0, graph.batch, ref)
        return e, x, ctx

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
        energy, x, ctx = self._energy(graph, graph.edge_vectors())
        assert self.force_head is not None
        forces = self.force_head(x, ctx) * self.config.force_std
        return {"energy": energy, "forces": forces}

    def _check_elements(self, z: Tensor) -> None:
        bad = (z <= 0) | (z >= self.config.max_num_elements)
        if bool(bad.any()):
            idx = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"atom {idx} has atomic number {int(z[idx])}, outside this model's range "
                f"1..{self.config.max_num_elements - 1}"
            )
