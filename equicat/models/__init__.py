"""equicat models and the explicit table that builds them by name."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from equicat.models.allegro import Allegro, AllegroConfig
from equicat.models.equiformer_v2 import EquiformerV2, EquiformerV2Config
from equicat.models.escn import Escn, EscnConfig
from equicat.models.est import EST, ESTConfig
from equicat.models.gcn import GCNConfig, LSetGCN
from equicat.models.scn import SCN, SCNConfig

__all__ = [
    "MODELS",
    "build",
    "build_from_config",
    "model_name",
    "EquiformerV2",
    "EquiformerV2Config",
    "EST",
    "ESTConfig",
    "Escn",
    "EscnConfig",
    "SCN",
    "SCNConfig",
    "Allegro",
    "AllegroConfig",
    "LSetGCN",
    "GCNConfig",
]

# name -> (model class, config class)
MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "equiformer_v2": (EquiformerV2, EquiformerV2Config),
    "escn": (Escn, EscnConfig),
    "est": (EST, ESTConfig),
    "scn": (SCN, SCNConfig),
    "allegro": (Allegro, AllegroConfig),
    "gcn": (LSetGCN, GCNConfig),
}


def _entry(name: str) -> tuple[type[nn.Module], type]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None


def build(name: str, **config: Any) -> nn.Module:
    """Build a model from its table name and config values (defaults make a small model).

    Example: ``build("equiformer_v2", lmax=4, mmax=2, num_layers=8)``.
    """
    cls, cfg_cls = _entry(name)
    known = {f.name for f in fields(cfg_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"unknown config field(s) {unknown} for model {name!r}; known: {sorted(known)}"
        )
    return cls(cfg_cls(**config))


def build_from_config(name: str, config: dict[str, Any]) -> nn.Module:
    """Build from a stored plain-data config (as in a checkpoint)."""
    return build(name, **config)


def model_name(model: nn.Module) -> str:
    """Table name of a model instance."""
    for name, (cls, _) in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not in the equicat model table")
