"""Import fairchem-1.x SCN (``SphericalChannelNetwork``) checkpoint files.

Same file layout as :mod:`equicat.checkpoints.fairchem` (read with ``weights_only=True``).
Supported: one message band (``num_bands=1``), the sphere-grid aggregation
(``use_grid=True``), Gaussian distances, ``mmax`` 0 or 1 with 1 or 4 taps, one or two
neighbour resolutions; anything else is refused naming the attribute.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from equicat.checkpoints.fairchem import FairchemImportError, _model_attributes, _normalizers
from equicat.models.scn import SCNConfig

__all__ = ["is_scn_checkpoint", "scn_from_fairchem"]

# reference constructor defaults (fairchem-core 1.10), used for attributes a file omits
_DEFAULTS: dict[str, Any] = dict(
    max_num_neighbors=20, cutoff=8.0, max_num_elements=90, num_interactions=8, lmax=6, mmax=1,
    num_resolutions=2, sphere_channels=128, sphere_channels_reduce=128, hidden_channels=256,
    num_taps=-1, use_grid=True, num_bands=1, num_sphere_samples=128, num_basis_functions=128,
    distance_function="gaussian", basis_width_scalar=1.0, distance_resolution=0.02,
    direct_forces=True, regress_forces=True,
)  # fmt: skip
# direct_forces=False: the reference's gradient forces differ from -dE/dr of the same energy
# (measured; energies agree to 1e-10 eV), so such files are refused rather than mis-imported
_REQUIRED = {
    "use_grid": True,
    "num_bands": 1,
    "distance_function": "gaussian",
    "direct_forces": True,
    "regress_forces": True,
}
_NEAR_NEIGHBORS = 12  # the reference's near/far split when num_resolutions == 2 (App. B.1)

_RENAMES = [
    (r"^sphere_embedding\.", "atom_embedding."),
    (r"^edge_blocks\.(\d+)\.dist_block\.fc1_dist\.", r"blocks.\1.edge_embedding.distance_proj."),
    (r"^edge_blocks\.(\d+)\.dist_block\.(source|target)_embedding\.",
     r"blocks.\1.edge_embedding.\2_embedding."),
    (r"^edge_blocks\.(\d+)\.dist_block\.fc1_edge_attr\.", r"blocks.\1.edge_embedding.edge_proj."),
    (r"^edge_blocks\.(\d+)\.message_blocks\.(\d+)\.fc1_dist\.",
     r"blocks.\1.messages.\2.edge_to_hidden."),
    (r"^edge_blocks\.(\d+)\.message_blocks\.(\d+)\.fc1_edge_proj\.",
     r"blocks.\1.messages.\2.pair_to_hidden."),
    (r"^edge_blocks\.(\d+)\.message_blocks\.(\d+)\.fc1_edge\.", r"blocks.\1.messages.\2.hidden."),
    (r"^edge_blocks\.(\d+)\.message_blocks\.(\d+)\.fc2_edge\.", r"blocks.\1.messages.\2.out."),
    (r"^edge_blocks\.(\d+)\.fc(\d)_sphere\.", r"blocks.\1.aggregate.fc\2."),
    (r"^energy_fc(\d)\.", r"outputs.energy.fc\1."),
    (r"^force_fc(\d)\.", r"outputs.force.fc\1."),
]  # fmt: skip
_IGNORED = re.compile(r"distance_expansion\.offset$")


def is_scn_checkpoint(ckpt: dict[str, Any]) -> bool:
    """Whether a fairchem-1.x checkpoint dict holds an SCN model."""
    try:
        name, _ = _model_attributes(ckpt["config"])
    except (FairchemImportError, KeyError, TypeError, AttributeError):
        return False
    return name.lower() in ("scn", "spherical_channel_network", "sphericalchannelnetwork")


def _num_taps(attrs: dict[str, Any]) -> int:
    taps, mmax = int(attrs["num_taps"]), int(attrs["mmax"])
    if taps < 0:  # the reference's automatic choice, measured: 1 for mmax=0, 4 for mmax=1
        taps = {0: 1, 1: 4}.get(mmax, 0)
    if taps < 1:
        raise FairchemImportError(f"num_taps={attrs['num_taps']} with mmax={mmax} is not supported")
    return taps


def config_from_fairchem(ckpt: dict[str, Any]) -> SCNConfig:
    """Build the equicat config of a fairchem-1.x SCN checkpoint."""
    _, given = _model_attributes(ckpt["config"])
    attrs = {**_DEFAULTS, **given}
    for key, want in _REQUIRED.items():
        if attrs[key] != want:
            raise FairchemImportError(
                f"model attribute {key}={attrs[key]!r} is not supported (equicat's SCN "
                f"implements {key}={want!r})"
            )
    if attrs["sphere_channels_reduce"] != attrs["sphere_channels"]:
        raise FairchemImportError("sphere_channels_reduce != sphere_channels is not supported")
    if attrs["num_resolutions"] not in (1, 2):
        raise FairchemImportError(f"num_resolutions={attrs['num_resolutions']} is not supported")
    state = ckpt["state_dict"]
    offsets = next((v for k, v in state.items() if k.endswith("distance_expansion.offset")), None)
    cutoff = float(attrs["cutoff"])
    num_basis = len(offsets) if offsets is not None else int(cutoff / attrs["distance_resolution"])
    mean, std, fstd = _normalizers(ckpt)
    return SCNConfig(
        num_layers=int(attrs["num_interactions"]),
        lmax=int(attrs["lmax"]),
        mmax=int(attrs["mmax"]),
        num_taps=_num_taps(attrs),
        sphere_channels=int(attrs["sphere_channels"]),
        hidden_channels=int(attrs["hidden_channels"]),
        edge_channels=int(attrs["num_basis_functions"]),
        num_distance_basis=num_basis,
        distance_basis_width=float(attrs["basis_width_scalar"]),
        cutoff=cutoff,
        max_neighbors=int(attrs["max_num_neighbors"]),
        near_neighbors=_NEAR_NEIGHBORS if attrs["num_resolutions"] == 2 else None,
        max_num_elements=int(attrs["max_num_elements"]),
        num_sphere_samples=int(attrs["num_sphere_samples"]),
        point_density_width=0.15,
        first_layer_residual=False,
        energy_mean=mean,
        energy_std=std,
        force_std=fstd,
        forces="direct",
    )


def convert_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename reference parameters to equicat's; drop recomputed buffers."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if _IGNORED.search(key):
            continue
        for pattern, repl in _RENAMES:
            new, hits = re.subn(pattern, repl, key, count=1)
            if hits:
                out[new] = value
                break
        else:
            raise FairchemImportError(f"unexpected SCN parameter {key!r} in the checkpoint")
    return out


def scn_from_fairchem(
    ckpt: dict[str, Any], use_ema: bool = True
) -> tuple[SCNConfig, dict[str, Tensor]]:
    """Config and equicat state dict from a loaded fairchem-1.x SCN checkpoint dict.

    Args:
        ckpt: The dict ``torch.load`` returned.
        use_ema: Take the EMA weights when the file has them.
    """
    config = config_from_fairchem(ckpt)
    state = ckpt["state_dict"]
    ema = ckpt.get("ema_state_dict")
    if use_ema and isinstance(ema, dict) and ema.get("shadow_params"):
        # fairchem's EMA stores the trainable parameters in model.parameters() order
        names = [k for k in state if not _IGNORED.search(k)]
        shadow = ema["shadow_params"]
        if len(shadow) == len(names):
            state = {**state, **dict(zip(names, shadow, strict=True))}
    return config, convert_state_dict(state)
