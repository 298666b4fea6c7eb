"""``equicat analyze irreps``: how a model's final node embeddings use each degree.

For a checkpoint whose model exposes ``node_embeddings(graph) -> {l: [N, C, 2l+1]}`` (the
L-set GCN) and a labelled structure file, writes to ``--out``:

- ``irreps_stats.json`` and ``irreps_stats.png``: per degree, over all atoms, the mean norm
  ``<|x_l|>`` of an atom's degree-``l`` block, the variance of its components, and its share
  ``sum |x_l|^2 / sum_l' sum |x_l'|^2`` of the total squared norm;
- ``irreps_pca.json`` and ``irreps_pca.png``: per degree a 2-D PCA of one descriptor per
  structure, coloured by ``atoms.info[--property]`` (or a calculator result such as
  ``energy``). The descriptor pools over the structure's atoms the per-channel norms
  ``|x_{l,c}|`` (rotation invariant); for ``l = 0`` the signed scalars themselves.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_parser", "run", "irreps_statistics", "pca_2d"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "analyze",
        help="analyse trained models",
        description="Analyse what a trained model's representations hold.",
    )
    what = p.add_subparsers(dest="analysis", required=True)
    q = what.add_parser(
        "irreps",
        help="per-degree statistics and PCA of final node embeddings",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--checkpoint", required=True, help="checkpoint of a model with "
                   "per-degree node embeddings (e.g. gcn)")  # fmt: skip
    q.add_argument("--data", required=True, help="structure file (extxyz) with the property")
    q.add_argument("--property", required=True, help="atoms.info key (or calculator result, "
                   "e.g. energy) that colours the projections")  # fmt: skip
    q.add_argument("--out", required=True, help="output directory")
    q.add_argument("--batch-size", type=int, default=32, help="structures per forward pass")
    q.add_argument("--max-structures", type=int, default=None, help="use the first N only")


def _property(atoms: Any, key: str, index: int, path: str) -> float:
    if key in atoms.info:
        value = atoms.info[key]
    elif atoms.calc is not None and key in getattr(atoms.calc, "results", {}):
        value = atoms.calc.results[key]
    else:
        known = sorted(atoms.info) + sorted(getattr(atoms.calc, "results", {}) or {})
        raise ValueError(f"structure {index} of {path} has no property {key!r} in atoms.info "
                         f"or its calculator results; it has {known}")  # fmt: skip
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"property {key!r} of structure {index} in {path} is not a number: "
                         f"{value!r}") from None  # fmt: skip


def irreps_statistics(blocks: dict[int, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per-degree statistics of node embeddings.

    Args:
        blocks: ``{l: [N, C, 2l+1]}`` embeddings of ``N`` atoms.

    Returns:
        ``{str(l): {"mean_norm", "variance", "share", "components"}}`` (see module docstring).
    """
    sq = {l_: (x**2).sum(axis=(1, 2)) for l_, x in blocks.items()}  # [N] each
    total = sum(float(s.sum()) for s in sq.values())
    return {
        str(l_): {
            "mean_norm": float(np.sqrt(sq[l_]).mean()),
            "variance": float(x.reshape(len(x), -1).var(axis=0).mean()),
            "share": float(sq[l_].sum()) / total if total > 0 else 0.0,
            "components": int(x.shape[1] * x.shape[2]),
        }
        for l_, x in blocks.items()
    }


def pca_2d(features: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """First two principal components ``[M, 2]`` and their explained-variance ratios."""
    centred = features - features.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    proj = np.zeros((len(features), 2))
    proj[:, :k] = centred @ vt[:k].T
    var = s**2
    ratio = (var[:2] / var.sum()).tolist() if var.sum() > 0 else [0.0, 0.0]
    return proj, [float(r) for r in ratio] + [0.0] * (2 - len(ratio))


def _embed(model: Any, frames: list, batch_size: int) -> tuple[dict, dict]:
    """Per-atom blocks ``{l: [N, C, 2l+1]}`` and per-structure descriptors ``{l: [M, C]}``."""
    import torch
    from tqdm import tqdm

    from equicat.data import AtomicGraph

    atoms_blocks: dict[int, list] = {}
    pooled: dict[int, list] = {}
    for start in tqdm(range(0, len(frames), batch_size), desc="embed", unit="batch"):
        batch = frames[start : start + batch_size]
        graph = AtomicGraph.from_atoms(batch, model.cutoff, model.max_neighbors)
        emb = model.node_embeddings(graph)
        counts = graph.natoms.clamp_min(1).to(torch.float32)[:, None]
        for l_, x in emb.items():
            x = x.float()
            desc = x[:, :, 0] if l_ == 0 else x.norm(dim=2)  # [N, C]
            summed = torch.zeros(graph.num_systems, x.shape[1]).index_add_(0, graph.batch, desc)
            atoms_blocks.setdefault(l_, []).append(x.numpy())
            pooled.setdefault(l_, []).append((summed / counts).numpy())  # [B, C] mean per system
    return ({l_: np.concatenate(v) for l_, v in atoms_blocks.items()},
            {l_: np.concatenate(v) for l_, v in pooled.items()})  # fmt: skip


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_stats(stats: dict, path: Path) -> None:
    plt = _pyplot()
    labels = [f"l={k}" for k in stats]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, key, title in zip(axes, ("mean_norm", "variance", "share"),
                              ("mean |x_l| per atom", "component variance",
                               "share of squared norm"), strict=True):  # fmt: skip
        ax.bar(labels, [stats[k][key] for k in stats], color="tab:blue")
        ax.set_title(title)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def _plot_pca(pca: dict, values: np.ndarray, prop: str, path: Path) -> None:
    plt = _pyplot()
    keys = list(pca)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys) + 1.0, 3.2), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, key in zip(axes[0], keys, strict=True):
        xy = np.asarray(pca[key]["projection"])
        points = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=8, cmap="viridis")
        r = pca[key]["explained_variance_ratio"]
        ax.set_title(f"{key} ({100 * r[0]:.0f}% / {100 * r[1]:.0f}%)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=list(axes[0]), label=prop, fraction=0.02)
    _save_figure(fig, path)
    plt.close(fig)


def _save_figure(fig: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat analyze irreps``."""
    import ase.io

    from equicat.checkpoints import load

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    ckpt = load(args.checkpoint)
    model = ckpt.build()
    if not hasattr(model, "node_embeddings"):
        raise ValueError(
            f"model {ckpt.model_name!r} in {args.checkpoint} exposes no per-degree node "
            "embeddings; analyze irreps needs e.g. a 'gcn' checkpoint"
        )
    if not Path(args.data).exists():
        raise FileNotFoundError(f"structure file {args.data!r} does not exist")
    frames = ase.io.read(args.data, index=":" if args.max_structures is None
                         else f":{args.max_structures}")  # fmt: skip
    frames = frames if isinstance(frames, list) else [frames]
    values = np.array([_property(a, args.property, i, args.data) for i, a in enumerate(frames)])
    blocks, pooled = _embed(model, frames, args.batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = irreps_statistics(blocks)
    meta = {"checkpoint": str(args.checkpoint), "model": ckpt.model_name, "data": args.data,
            "structures": len(frames), "atoms": int(sum(len(a) for a in frames))}  # fmt: skip
    _write_json(out / "irreps_stats.json", {**meta, "degrees": stats})
    _plot_stats(stats, out / "irreps_stats.png")
    pca = {}
    for l_, feats in [*pooled.items(), ("all", np.concatenate(list(pooled.values()), axis=1))]:
        proj, ratio = pca_2d(feats)
        pca[f"l={l_}" if l_ != "all" else "all"] = {
            "projection": proj.tolist(), "explained_variance_ratio": ratio}  # fmt: skip
    _write_json(out / "irreps_pca.json", {**meta, "property": args.property,
                                          "values": values.tolist(), "pca": pca})  # fmt: skip
    _plot_pca(pca, values, args.property, out / "irreps_pca.png")
    for key, row in stats.items():
        print(f"l={key}: mean norm {row['mean_norm']:.4g}, variance {row['variance']:.4g}, "
              f"share {100 * row['share']:.1f}%")  # fmt: skip
    print(f"wrote {out}/irreps_stats.json, irreps_stats.png, irreps_pca.json, irreps_pca.png")
    return 0
