"""The equicat checkpoint format: a plain dict, never a pickled module.

Keys: ``format`` (``"equicat-checkpoint"``), ``format_version``, ``model_name``,
``model_config`` (plain data), ``state_dict``, optional ``ema_state_dict``,
``normalization`` and ``element_references`` (plain data), ``provenance`` (equicat /
torch versions, creation time, git sha, data, steps) and ``metrics``. Files load with
``torch.load(weights_only=True)`` and are written atomically (temporary file + rename).
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from equicat.checkpoints.fairchem import equiformer_v2_from_fairchem, is_fairchem_checkpoint
from equicat.checkpoints.fairchem_escn import escn_from_fairchem, is_escn_checkpoint
from equicat.checkpoints.fairchem_scn import is_scn_checkpoint, scn_from_fairchem
from equicat.checkpoints.registry import SHIPPED, resolve
from equicat.models import build_from_config, model_name

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "save",
    "load",
    "load_model",
]

FORMAT = "equicat-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file cannot be used (unreadable, foreign or inconsistent)."""


@dataclass
class Checkpoint:
    """A checkpoint read from disk (equicat or imported fairchem-1.x).

    Attributes:
        model_name: Name in :data:`equicat.models.MODELS`.
        model_config: Plain-data config.
        state_dict: Weights (EMA weights already substituted when requested and present).
        source: ``"equicat"`` or ``"fairchem"``.
        metadata: Everything else in the file (provenance, metrics, normalisation, ...).
    """

    model_name: str
    model_config: dict[str, Any]
    state_dict: dict[str, Tensor]
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        """The model with its weights, in eval mode, on CPU in float32."""
        model = build_from_config(self.model_name, self.model_config)
        result = model.load_state_dict(self.state_dict, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"checkpoint weights do not fit model {self.model_name!r}: missing "
                f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
            )
        return model.eval()


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def save(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    ema_state_dict: dict[str, Tensor] | None = None,
    metrics: dict[str, Any] | None = None,
    **metadata: Any,
) -> Path:
    """Write ``model`` as an equicat checkpoint, atomically.

    Args:
        model: An equicat model (its class must be in the model table).
        path: Destination file.
        ema_state_dict: EMA weights to store beside the raw ones.
        metrics: Evaluation numbers to store.
        **metadata: Plain data stored under ``provenance`` (e.g. ``data=``, ``steps=``) unless
            the key is ``normalization`` or ``element_references`` (stored at top level).

    Returns:
        The path written.
    """
    import equicat

    path = Path(path)
    provenance = {
        "equicat_version": getattr(equicat, "__version__", "unknown"),
        "torch_version": str(torch.__version__),  # TorchVersion is not plain data
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_sha": _git_sha(),
    }
    top = {k: metadata.pop(k) for k in ("normalization", "element_references") if k in metadata}
    provenance.update(metadata)
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": model_name(model),
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "ema_state_dict": None
        if ema_state_dict is None
        else {k: v.detach().cpu() for k, v in ema_state_dict.items()},
        "provenance": provenance,
        "metrics": metrics or {},
        **top,
    }
    _check_plain(ckpt, "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(ckpt, fh)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_PLAIN = (str, int, float, bool, type(None), Tensor)


def _check_plain(value: Any, where: str) -> None:
    """Refuse anything ``torch.load(weights_only=True)`` could not read back."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key {k!r} that is not a str or int")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif type(value) not in _PLAIN and not isinstance(value, Tensor):
        raise TypeError(
            f"{where} is a {type(value).__name__}; checkpoints hold plain data only "
            "(str, int, float, bool, None, tensors, lists and dicts of them)"
        )


def _read(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint file {str(path)!r} does not exist (shipped checkpoints by name: "
            f"{', '.join(sorted(SHIPPED))})"
        )
    if path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a directory, not a checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad files
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: it is truncated, corrupt or not a torch "
            f"file, or it holds pickled objects that are not plain data ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]})"
        ) from err


def load(path: str | os.PathLike, use_ema: bool = True) -> Checkpoint:
    """Read an equicat checkpoint or a fairchem-1.x EquiformerV2 or eSCN file.

    Args:
        path: The file, or the name of a shipped checkpoint (see
            :mod:`equicat.checkpoints.registry`).
        use_ema: Use EMA weights when the file has them.

    Raises:
        FileNotFoundError: No such file.
        CheckpointError: Unreadable, foreign or inconsistent file.
    """
    path = resolve(path)
    raw = _read(path)
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{str(path)!r} has checkpoint format version {version}; this equicat reads "
                f"version {FORMAT_VERSION}: upgrade equicat"
            )
        state = raw["state_dict"]
        if use_ema and raw.get("ema_state_dict"):
            state = raw["ema_state_dict"]
        meta = {k: v for k, v in raw.items() if k not in ("state_dict", "ema_state_dict")}
        return Checkpoint(raw["model_name"], dict(raw["model_config"]), state, "equicat", meta)
    if isinstance(raw, dict) and is_fairchem_checkpoint(raw) and is_escn_checkpoint(raw):
        config, state = escn_from_fairchem(raw, use_ema=use_ema)
        meta = {"fairchem_config": raw.get("config")}
        return Checkpoint("escn", config.to_dict(), state, "fairchem", meta)
    if isinstance(raw, dict) and is_fairchem_checkpoint(raw) and is_scn_checkpoint(raw):
        config, state = scn_from_fairchem(raw, use_ema=use_ema)
        return Checkpoint(
            "scn", config.to_dict(), state, "fairchem", {"fairchem_config": raw.get("config")}
        )
    if isinstance(raw, dict) and is_fairchem_checkpoint(raw):
        config, state = equiformer_v2_from_fairchem(raw, use_ema=use_ema)
        meta = {"fairchem_config": raw.get("config")}
        return Checkpoint("equiformer_v2", config.to_dict(), state, "fairchem", meta)
    keys = sorted(raw)[:8] if isinstance(raw, dict) else type(raw).__name__
    raise CheckpointError(
        f"{str(path)!r} is neither an equicat checkpoint nor a fairchem-1.x EquiformerV2, eSCN "
        f"or SCN file (found: {keys})"
    )


def load_model(path: str | os.PathLike, use_ema: bool = True) -> nn.Module:
    """Read a checkpoint and build its model (eval mode, CPU, float32)."""
    return load(path, use_ema=use_ema).build()
