"""Typed configuration of the Equivariant Spherical Transformer model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from equicat.models.equiformer_v2.config import EquiformerV2Config

__all__ = ["ESTConfig"]


@dataclass(frozen=True)
class ESTConfig(EquiformerV2Config):
    """Hyper-parameters of :class:`~equicat.models.est.EST`.

    Every :class:`EquiformerV2Config` field keeps its meaning (the message block, embeddings
    and heads are EquiformerV2's; ``ffn_hidden_channels`` and ``grid_resolution`` size the
    energy head). The ``est_*`` fields configure the EST update block that replaces
    EquiformerV2's feed-forward network in every layer.

    Attributes:
        est_grid: Sample points of the spherical transform: ``"fibonacci"`` (EST's choice)
            or ``"lat_long"`` (the e3nn-style grid, for comparison).
        est_points: Number of Fibonacci points ``P``.
        est_refined: Refine the Fibonacci lattice by repulsion (EST's "dynamics").
        est_res_beta: Polar angles of the lat-long grid.
        est_res_alpha: Azimuths of the lat-long grid.
        est_inverse: Inverse transform, ``"quadrature"`` or ``"lstsq"``
            (:mod:`equicat.so3.spherical_transform`).
        est_heads: Heads of the spherical attention.
        est_head_channels: Query/key/value channels per head.
        est_orientation_degree: Highest Legendre degree of the relative orientation
            embedding (a learned per-head function of ``<u_p, u_q>``); 0 switches it off.
        est_steerable_experts: Steerable FFN experts (degree-wise linear, gate, linear).
        est_spherical_experts: Spherical FFN experts (point-wise MLP on the samples).
        est_expert_channels: Hidden channels of every expert.
        est_top_k: Route each node to its ``k`` highest-scoring experts (weights
            renormalised over them); 0 means dense routing (the paper's best setting).
    """

    est_grid: Literal["fibonacci", "lat_long"] = "fibonacci"
    est_points: int = 64
    est_refined: bool = True
    est_res_beta: int = 8
    est_res_alpha: int = 8
    est_inverse: Literal["quadrature", "lstsq"] = "quadrature"
    est_heads: int = 2
    est_head_channels: int = 8
    est_orientation_degree: int = 4
    est_steerable_experts: int = 1
    est_spherical_experts: int = 1
    est_expert_channels: int = 32
    est_top_k: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.est_grid not in ("fibonacci", "lat_long"):
            raise ValueError(f"est_grid must be 'fibonacci' or 'lat_long', got {self.est_grid!r}")
        if self.est_inverse not in ("quadrature", "lstsq"):
            raise ValueError(
                f"est_inverse must be 'quadrature' or 'lstsq', got {self.est_inverse!r}"
            )
        num_experts = self.est_steerable_experts + self.est_spherical_experts
        if min(self.est_steerable_experts, self.est_spherical_experts) < 0 or num_experts < 1:
            raise ValueError(
                "need at least one EST expert and no negative counts, got "
                f"est_steerable_experts={self.est_steerable_experts}, "
                f"est_spherical_experts={self.est_spherical_experts}"
            )
        if not 0 <= self.est_top_k <= num_experts:
            raise ValueError(f"est_top_k must be in 0..{num_experts}, got {self.est_top_k}")
        if min(self.est_points, self.est_res_beta, self.est_res_alpha, self.est_heads) < 1:
            raise ValueError("est_points, est_res_beta, est_res_alpha and est_heads must be >= 1")
        if min(self.est_head_channels, self.est_expert_channels) < 1:
            raise ValueError(
                "est_head_channels and est_expert_channels must be >= 1, got "
                f"{self.est_head_channels} and {self.est_expert_channels}"
            )
        if self.est_orientation_degree < 0:
            raise ValueError(
                f"est_orientation_degree must be >= 0, got {self.est_orientation_degree}"
            )
        if self.lmax < 1:
            raise ValueError(
                f"EST needs lmax >= 1 (its steerable experts gate l > 0), got {self.lmax}"
            )
