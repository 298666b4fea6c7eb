"""Import fairchem-1.x eSCN checkpoint files.

Same file layout as the EquiformerV2 files (:mod:`equicat.checkpoints.fairchem`): a dict with
``state_dict`` (``module.`` prefixes), ``config`` (``model: {name: escn, ...}`` or
``model: escn`` + ``model_attributes``), optional ``ema_state_dict`` and ``normalizers``.
Only one resolution (``lmax_list``/``mmax_list`` of length 1) and Gaussian distances are
supported. The sphere sample points and their harmonics are taken from the file (they are
parameters there), so predictions use exactly the reference's samples.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from equicat.checkpoints.fairchem import FairchemImportError, _model_attributes, _normalizers
from equicat.models.escn import EscnConfig

__all__ = ["is_escn_checkpoint", "escn_from_fairchem"]

# (pattern, replacement) on the reference's parameter names, first match wins
_RENAMES = [
    (r"sphere_embedding\.", "atom_embedding."),
    (r"sphere_points$", "sphere_points"),
    (r"sphharm_weights\.0$", "sphere_harmonics"),
    (r"layer_blocks\.(\d+)\.message_block\.edge_block\.", r"layers.\1.message.edge."),
    (
        r"layer_blocks\.(\d+)\.message_block\.so2_block_(source|target)\.so2_conv\.(\d+)\.",
        r"layers.\1.message.so2_\2.orders.\3.",
    ),
    (
        r"layer_blocks\.(\d+)\.message_block\.so2_block_(source|target)\.",
        r"layers.\1.message.so2_\2.",
    ),
    (r"layer_blocks\.(\d+)\.fc1_sphere\.", r"layers.\1.update.mlp.0."),
    (r"layer_blocks\.(\d+)\.fc2_sphere\.", r"layers.\1.update.mlp.2."),
    (r"layer_blocks\.(\d+)\.fc3_sphere\.", r"layers.\1.update.mlp.4."),
    (r"energy_block\.", "energy_head."),
    (r"force_block\.", "force_head."),
]
# buffers the reference stores that equicat recomputes
_IGNORED = re.compile(r"(distance_expansion\.offset|SO3_grid|mapping)")
_FROZEN = re.compile(r"(sphere_points|sphharm_weights)")


def is_escn_checkpoint(ckpt: dict[str, Any]) -> bool:
    """Whether a fairchem-1.x checkpoint dict holds an eSCN model."""
    try:
        name, _ = _model_attributes(ckpt["config"])
    except FairchemImportError:
        return False
    return name.lower() == "escn" or name.lower().endswith(".escn")


def config_from_fairchem(ckpt: dict[str, Any]) -> EscnConfig:
    """Build the equicat config of a fairchem-1.x eSCN checkpoint."""
    _, attrs = _model_attributes(ckpt["config"])
    lmax, mmax = attrs.get("lmax_list", [6]), attrs.get("mmax_list", [2])
    if len(lmax) != 1 or len(mmax) != 1:
        raise FairchemImportError(f"multiple resolutions (lmax_list={lmax}) are not supported")
    if attrs.get("distance_function", "gaussian") != "gaussian":
        raise FairchemImportError(
            f"model attribute distance_function={attrs['distance_function']!r} is not supported "
            "(equicat implements 'gaussian', the published configuration)"
        )
    cutoff = float(attrs.get("cutoff", 8.0))
    offsets = ckpt["state_dict"].get("module.distance_expansion.offset")
    if offsets is None:
        offsets = ckpt["state_dict"].get("distance_expansion.offset")
    if offsets is not None:
        num_basis = int(offsets.shape[0])
    else:
        num_basis = int(cutoff / float(attrs.get("distance_resolution", 0.02)))
    mean, std, fstd = _normalizers(ckpt)
    return EscnConfig(
        num_layers=attrs.get("num_layers", 8),
        lmax=lmax[0],
        mmax=mmax[0],
        sphere_channels=attrs.get("sphere_channels", 128),
        hidden_channels=attrs.get("hidden_channels", 256),
        edge_channels=attrs.get("edge_channels", 128),
        num_distance_basis=num_basis,
        distance_basis_width=float(attrs.get("basis_width_scalar", 1.0)),
        num_sphere_samples=attrs.get("num_sphere_samples", 128),
        cutoff=cutoff,
        max_neighbors=attrs.get("max_neighbors", 40),
        max_num_elements=attrs.get("max_num_elements", 90),
        energy_mean=mean,
        energy_std=std,
        force_std=fstd,
        forces="direct" if attrs.get("regress_forces", True) else "conservative",
    )


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename reference parameters to equicat's; drop recomputed buffers."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if _IGNORED.search(key):
            continue
        for pattern, repl in _RENAMES:
            m = re.match(pattern, key)
            if m is not None:
                out[m.expand(repl) + key[m.end() :]] = value
                break
        else:
            raise FairchemImportError(f"unexpected parameter {key!r} in the eSCN checkpoint")
    return out


def escn_from_fairchem(
    ckpt: dict[str, Any], use_ema: bool = True
) -> tuple[EscnConfig, dict[str, Tensor]]:
    """Config and equicat state dict from a loaded fairchem-1.x eSCN checkpoint dict.

    Args:
        ckpt: The dict ``torch.load`` returned.
        use_ema: Take the EMA weights when the file has them.
    """
    config = config_from_fairchem(ckpt)
    state = ckpt["state_dict"]
    ema = ckpt.get("ema_state_dict")
    if use_ema and isinstance(ema, dict) and ema.get("shadow_params"):
        # fairchem's EMA stores parameters in model.parameters() order; the sphere samples
        # are (frozen) parameters there, kept in the EMA or not: the count tells which
        names = [k for k, v in state.items() if v.is_floating_point() and not _IGNORED.search(k)]
        shadow = ema["shadow_params"]
        for keys in (names, [k for k in names if not _FROZEN.search(k)]):
            if len(shadow) == len(keys):
                state = {**state, **dict(zip(keys, shadow, strict=True))}
                break
    return config, convert_state_dict(state)
