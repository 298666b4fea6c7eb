"""Re-run a fairchem-1.x reference checkpoint and write full-precision predictions.

Runs inside the reference venv (``python fairchem_rerun.py ...`` with that venv's python and
the harness's ``shim`` on PYTHONPATH); it imports nothing from equicat. The harness's
``reference.extxyz`` stores forces with 8 decimals, too few for the tiny forces of a
random-weight SCN (~1e-4 eV/Å); this writes them as JSON floats instead, for several
calls per structure, because SCN draws a random roll for every edge frame on every call.

    python fairchem_rerun.py --model scn-small --checkpoint DIR/checkpoint.pt \\
        --structures DIR/in.extxyz --out DIR/rerun.json --calls 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import ase.io
import torch


def _graph_in_float32() -> None:
    """The reference's neighbour search only runs in float32: feed it float32 copies."""
    import fairchem.core.models.base as base

    search = base.radius_graph_pbc

    def wrapped(data, *args, **kwargs):
        copy = data.clone()
        copy.pos, copy.cell = data.pos.float(), data.cell.float()
        torch.set_default_dtype(torch.float32)
        try:
            return search(copy, *args, **kwargs)
        finally:
            torch.set_default_dtype(torch.float64)

    base.radius_graph_pbc = wrapped


def _write_variant(mr, name: str, attributes: dict, path: Path):
    """Build ``name`` with changed attributes and random weights; save it like the harness."""
    kind, attrs, _ = mr.build(name)
    attrs = {**attrs, **attributes}
    mr.CONFIGS["variant"] = (kind, attrs)
    _, _, model = mr.build("variant")
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(0.02 * torch.randn_like(prm))
            prm.copy_(prm.float())  # weights the float32 checkpoint holds exactly
    config = {"model": {"name": kind, **attrs}, "trainer": "ocp"}
    config["dataset"] = {"normalize_labels": True, "target_mean": mr.ENERGY_MEAN,
                         "target_std": mr.ENERGY_STD, "grad_target_mean": 0.0,
                         "grad_target_std": mr.ENERGY_STD}  # fmt: skip
    state = {"module." + k: v.float() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": config}, path)
    return model


def _frames(model, inputs) -> dict:
    """Edges and the rotation R (edge to +y) of every edge frame of the last call.

    Black-box: the first layer's inputs give the edges; the Wigner matrices the model holds
    after the call give R, as their degree-1 block (in the (x, y, z) harmonic basis the
    degree-1 block of D(R) is R itself). With several taps, tap 0 (no extra roll) is taken.
    """
    _, _, dist, edge_index = inputs[:4]
    wigner = model.sphharm_list[0].wigner  # [E * taps, K, (L+1)^2], edge-major
    taps = wigner.shape[0] // edge_index.shape[1]
    rot = wigner[::taps, 1:4, 1:4]  # rows (1,-1), (1,0), (1,1) lead the reduced rows
    return {"edge_index": edge_index.clone(), "distance": dist.detach().double().clone(),
            "rotation": rot.detach().double().clone()}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--harness", required=True, help="the fairchem_reference directory")
    p.add_argument("--model", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--structures", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float64", action="store_true", help="run the reference in float64")
    p.add_argument(
        "--dump-frames",
        default=None,
        help="torch.save, per structure, the edges and edge-frame rotations of the last call",
    )
    p.add_argument(
        "--attributes",
        default=None,
        help="JSON model attributes that replace the named model's; then a random-weight "
        "checkpoint is written to --checkpoint (as the harness does) instead of read",
    )
    a = p.parse_args()
    sys.path.insert(0, a.harness)
    import make_reference as mr  # the harness's builder: same classes, same attributes

    if a.float64:
        _graph_in_float32()

    torch.manual_seed(a.seed)
    if a.float64:  # this process only: the reference builds constants in the default dtype
        torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    if a.attributes is None:  # the checkpoint's own attributes, as the harness wrote them
        ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
        attrs = dict(ckpt["config"]["model"])
        mr.CONFIGS["checkpoint"] = (attrs.pop("name"), attrs)
        _, _, model = mr.build("checkpoint")
        state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
        model.load_state_dict(state)
    else:
        model = _write_variant(mr, a.model, json.loads(a.attributes), Path(a.checkpoint))
    model.eval()
    mean, std = mr.ENERGY_MEAN, mr.ENERGY_STD
    seen: dict = {}
    model.edge_blocks[0].register_forward_hook(lambda mod, inp, out: seen.update(inputs=inp))
    rows, frames = [], []
    for atoms in ase.io.read(a.structures, ":"):
        batch = mr.to_batch(atoms)
        if a.float64:
            batch.pos, batch.cell = batch.pos.double(), batch.cell.double()
        calls = []
        for _ in range(a.calls):
            with torch.no_grad():
                res = model(batch)
            calls.append({
                "energy": float(res["energy"].detach().reshape(-1)[0]) * std + mean,
                "forces": (res["forces"].detach().double() * std).tolist(),
            })  # fmt: skip
        rows.append(calls)
        if a.dump_frames:
            frames.append(_frames(model, seen["inputs"]))
    Path(a.out).write_text(json.dumps(rows))
    if a.dump_frames:
        torch.save(frames, a.dump_frames)


if __name__ == "__main__":
    main()
