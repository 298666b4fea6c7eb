"""Import fairchem-1.x EquiformerV2 checkpoint files.

A fairchem-1.x file is a ``torch.save`` dict with ``state_dict`` (keys usually prefixed with
``module.``), ``config`` (either ``model: {name: ..., <attributes>}`` or the older
``model: NAME`` + ``model_attributes``), optional ``ema_state_dict`` and ``normalizers``.
The file is read with ``weights_only=True``: nothing in it is executed.

Only the published architecture choices are supported (separable S^2 activation in the
attention, grid MLP in the feed-forward network, ``layer_norm_sh``, SiLU); others are
refused with a message naming the attribute.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from equicat.models.equiformer_v2 import EquiformerV2Config

__all__ = ["is_fairchem_checkpoint", "equiformer_v2_from_fairchem", "FairchemImportError"]


class FairchemImportError(ValueError):
    """The file looks like a fairchem checkpoint but cannot be imported."""


# the published OC20 choices this implementation reproduces
_REQUIRED = {
    "norm_type": "layer_norm_sh",
    "attn_activation": "silu",
    "ffn_activation": "silu",
    "use_s2_act_attn": False,
    "use_gate_act": False,
    "use_grid_mlp": True,
    "use_sep_s2_act": True,
    "use_attn_renorm": True,
    "use_atom_edge_embedding": True,
    "share_atom_edge_embedding": False,
    "distance_function": "gaussian",
    "use_m_share_rad": False,
}

# (pattern, replacement) applied in order to the reference's parameter names
_ATTN = [
    (r"alpha_dot$", "alpha_dot"),
    (r"source_embedding\.", "edge.source_embedding."),
    (r"target_embedding\.", "edge.target_embedding."),
    (r"so2_conv_1\.rad_func\.", "radial."),
    (r"so2_conv_(\d)\.fc_m0\.", r"conv\1.fc_m0."),
    (r"so2_conv_(\d)\.so2_m_conv\.(\d+)\.fc\.", r"conv\1.fc_m.\2."),
    (r"alpha_norm\.", "alpha_norm."),
    (r"proj\.(weight|bias)$", r"proj.\1"),
]
_FFN = [
    (r"so3_linear_(\d)\.(weight|bias)$", r"linear_\1.\2"),
    (r"scalar_mlp\.0\.", "scalar_mlp.0."),
    (r"grid_mlp\.(\d)\.", r"grid_mlp.mlp.\1."),
]
_NORM = [(r"norm_l0\.", "norm_l0."), (r"affine_weight$", "affine_weight")]
_PREFIXES = [
    (r"sphere_embedding\.", "atom_embedding.", []),
    (r"edge_degree_embedding\.rad_func\.", "edge_degree.radial.", []),
    (
        r"edge_degree_embedding\.",
        "edge_degree.edge.",
        [(r"(source|target)_embedding\.", r"\1_embedding.")],
    ),
    (r"blocks\.(\d+)\.norm_1\.", r"blocks.\1.norm_attn.", _NORM),
    (r"blocks\.(\d+)\.norm_2\.", r"blocks.\1.norm_ffn.", _NORM),
    (r"blocks\.(\d+)\.ga\.", r"blocks.\1.attn.", _ATTN),
    (r"blocks\.(\d+)\.ffn\.", r"blocks.\1.ffn.", _FFN),
    (r"norm\.", "norm.", _NORM),
    (r"energy_block\.", "energy_head.ffn.", _FFN),
    (r"force_block\.", "force_head.attention.", _ATTN),
]
# buffers the reference stores that equicat recomputes
_IGNORED = re.compile(
    r"(SO3_grid|SO3_rotation|mapping|expand_index|balance_degree_weight|distance_expansion)"
)


def is_fairchem_checkpoint(ckpt: dict[str, Any]) -> bool:
    """Whether a loaded dict has the fairchem-1.x layout."""
    return isinstance(ckpt, dict) and "state_dict" in ckpt and "config" in ckpt


def _model_attributes(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    model = config.get("model")
    if isinstance(model, dict):
        attrs = dict(model)
        name = attrs.pop("name", None)
    elif isinstance(model, str):
        name, attrs = model, dict(config.get("model_attributes") or {})
    else:
        raise FairchemImportError("the checkpoint's config has no 'model' entry")
    if name is None:
        raise FairchemImportError("the checkpoint's config names no model")
    return str(name), attrs


def _normalizers(ckpt: dict[str, Any]) -> tuple[float, float, float]:
    norm = ckpt.get("normalizers") or {}
    cfg = ckpt["config"].get("dataset") or {}
    if isinstance(cfg, list):
        cfg = cfg[0] if cfg else {}
    target = norm.get("target") or {}
    grad = norm.get("grad_target") or {}

    def value(d: dict, key: str, fallback: float) -> float:
        v = d.get(key, fallback)
        return float(v.item() if isinstance(v, Tensor) else v)

    if not norm and not cfg.get("normalize_labels", False):
        return 0.0, 1.0, 1.0
    mean = value(target, "mean", cfg.get("target_mean", 0.0))
    std = value(target, "std", cfg.get("target_std", 1.0))
    fstd = value(grad, "std", cfg.get("grad_target_std", std))
    return mean, std, fstd


def config_from_fairchem(ckpt: dict[str, Any]) -> EquiformerV2Config:
    """Build the equicat config of a fairchem-1.x EquiformerV2 checkpoint."""
    name, attrs = _model_attributes(ckpt["config"])
    if "equiformer_v2" not in name.lower():
        raise FairchemImportError(
            f"this is a fairchem checkpoint of model {name!r}; only EquiformerV2 files import"
        )
    for key, want in _REQUIRED.items():
        if key in attrs and attrs[key] != want:
            raise FairchemImportError(
                f"model attribute {key}={attrs[key]!r} is not supported (equicat implements "
                f"{key}={want!r}, the published configuration)"
            )
    lmax, mmax = attrs.get("lmax_list", [6]), attrs.get("mmax_list", [2])
    if len(lmax) != 1 or len(mmax) != 1:
        raise FairchemImportError(f"multiple resolutions (lmax_list={lmax}) are not supported")
    mean, std, fstd = _normalizers(ckpt)
    return EquiformerV2Config(
        num_layers=attrs.get("num_layers", 12),
        lmax=lmax[0],
        mmax=mmax[0],
        sphere_channels=attrs.get("sphere_channels", 128),
        attn_hidden_channels=attrs.get("attn_hidden_channels", 128),
        num_heads=attrs.get("num_heads", 8),
        attn_alpha_channels=attrs.get("attn_alpha_channels", 32),
        attn_value_channels=attrs.get("attn_value_channels", 16),
        ffn_hidden_channels=attrs.get("ffn_hidden_channels", 512),
        edge_channels=attrs.get("edge_channels", 128),
        num_distance_basis=600,  # the reference always uses 600 Gaussians
        distance_basis_width=2.0,
        cutoff=float(attrs.get("max_radius", 5.0)),
        max_neighbors=attrs.get("max_neighbors", 500),
        max_num_elements=attrs.get("max_num_elements", 90),
        grid_resolution=attrs.get("grid_resolution", 18) or 18,
        avg_num_nodes=float(attrs.get("avg_num_nodes", 77.81317)),
        avg_degree=float(attrs.get("avg_degree", 23.395238876342773)),
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
        for pattern, repl, inner in _PREFIXES:
            m = re.match(pattern, key)
            if m is None:
                continue
            head, rest = m.expand(repl), key[m.end() :]
            for ip, ir in inner:
                if re.match(ip, rest):
                    rest = re.sub(ip, ir, rest, count=1)
                    break
            else:
                if inner:
                    raise FairchemImportError(f"unexpected parameter {key!r} in the checkpoint")
            out[head + rest] = value
            break
        else:
            raise FairchemImportError(f"unexpected parameter {key!r} in the checkpoint")
    return out


def equiformer_v2_from_fairchem(
    ckpt: dict[str, Any], use_ema: bool = True
) -> tuple[EquiformerV2Config, dict[str, Tensor]]:
    """Config and equicat state dict from a loaded fairchem-1.x checkpoint dict.

    Args:
        ckpt: The dict ``torch.load`` returned.
        use_ema: Take the EMA weights when the file has them.
    """
    config = config_from_fairchem(ckpt)
    state = ckpt["state_dict"]
    ema = ckpt.get("ema_state_dict")
    if use_ema and isinstance(ema, dict) and ema.get("shadow_params"):
        # fairchem's EMA stores the trainable parameters in model.parameters() order
        names = [k for k, v in state.items() if v.is_floating_point() and not _IGNORED.search(k)]
        shadow = ema["shadow_params"]
        if len(shadow) == len(names):
            state = {**state, **dict(zip(names, shadow, strict=True))}
    return config, convert_state_dict(state)
