"""Measured equivariance of each model family, in the format of the SCN paper's Table 4.

For every model family in :data:`equicat.models.MODELS` (EquiformerV2; eSCN when present;
SCN with ``m = 0``, with ``m in [-1, 1]`` and 1 tap, with ``m in [-1, 1]`` and 4 taps, and the
paper's "No 1x1 conv" ablation, summed messages in place of the grid aggregation, for
``m in [-1, 1]`` and for ``m = 0``)
and for float64 and float32, the mean absolute difference (MAD) between predictions for a
structure and for a randomly rotated copy:

    MAD_E = mean_s |E(r_s) - E(R_s r_s)|                        (SCN eq. 13), meV
    MAD_F = mean_{s,i,k} |F(r_s) - R_s^T F(R_s r_s)|_{ik}     (SCN eq. 14), meV/Å

Models have **random weights** (PyTorch's initialisation, then every parameter perturbed by
``--perturb * N(0, 1)``, default 0.02, the reference harness's recipe; seed ``--seed``), so
absolute MADs are on the scale of each random model's outputs; the ``%`` columns divide the
MAD by the mean absolute prediction (the paper divides by the model's MAE against DFT,
which random models do not have). Configurations are small (2 layers, ``L = 4``; the paper
used 12 layers and ``L = 6``); the SCN rows share every hyper-parameter but the message
variant.

Structures: ``--n`` OC-like slabs (fcc(111) 2x2x3 of a random metal, one random adsorbate,
rattled by 0.05 Å; 14-16 atoms), each rotated by its own random rotation (seeded); the same
structures and rotations for every row. Rows are written to ``OUT/equivariance.json``
atomically after each (model, dtype) pair; a rerun with the same settings skips finished
pairs (``--fresh`` recomputes).

    python benchmarks/equivariance.py --n 1000            # the paper's count
    python benchmarks/equivariance.py --n 50 --threads 1  # a quick run

``--table est`` runs the EST sampling table instead (the EST paper's Table 5:
:mod:`equivariance_est` in this folder, which documents its own options):

    python benchmarks/equivariance.py --table est --n 50 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.build import add_adsorbate, fcc111, molecule
from tqdm import tqdm

from equicat.data import AtomicGraph
from equicat.models import MODELS, build

METALS = ("Cu", "Ag", "Au", "Pt", "Pd", "Ni")
ADSORBATES = ("CO", "H2O", "NH3", "CH4", "OH", "N2")


@dataclass(frozen=True)
class Family:
    """One row: a model table name and the config values that define the variant."""

    label: str
    name: str
    config: dict[str, Any]


SCN_COMMON = dict(num_layers=2, lmax=4, sphere_channels=32, hidden_channels=64, cutoff=6.0)
FAMILIES = (
    Family("EquiformerV2", "equiformer_v2", dict(num_layers=2, lmax=4, mmax=2, cutoff=6.0)),
    Family("eSCN", "escn", dict(num_layers=2, lmax=4, mmax=2, cutoff=6.0)),
    Family("SCN m = 0", "scn", dict(SCN_COMMON, mmax=0, num_taps=1)),
    Family("SCN m in [-1, 1]", "scn", dict(SCN_COMMON, mmax=1, num_taps=1)),
    Family("SCN m in [-1, 1], 4-tap", "scn", dict(SCN_COMMON, mmax=1, num_taps=4)),
    Family("SCN m in [-1, 1], no 1x1 conv", "scn",
           dict(SCN_COMMON, mmax=1, num_taps=1, aggregation="sum")),
    Family("SCN m = 0, no 1x1 conv", "scn",
           dict(SCN_COMMON, mmax=0, num_taps=1, aggregation="sum")),
)  # fmt: skip


def structures(n: int, seed: int) -> list[tuple[Atoms, np.ndarray]]:
    """``n`` OC-like slabs with adsorbates, each with a random rotation matrix."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        slab = fcc111(METALS[rng.integers(len(METALS))], size=(2, 2, 3), vacuum=8.0)
        ads = molecule(ADSORBATES[rng.integers(len(ADSORBATES))])
        add_adsorbate(slab, ads, 2.0, ("ontop", "fcc", "hcp", "bridge")[rng.integers(4)])
        slab.rattle(0.05, seed=seed * 100_003 + i)
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        out.append((slab, q))
    return out


def rotated(atoms: Atoms, rot: np.ndarray) -> Atoms:
    """``r -> R r`` on positions and cell vectors."""
    new = atoms.copy()
    new.positions = atoms.positions @ rot.T
    new.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    return new


def log(msg: str) -> None:
    """Progress and notes go to stderr; the table to stdout."""
    print(msg, file=sys.stderr)


def build_model(family: Family, seed: int, dtype: torch.dtype, perturb: float) -> torch.nn.Module:
    """A random-weight model: default initialisation + ``perturb N(0, 1)`` on every parameter."""
    torch.manual_seed(seed)
    model = build(family.name, **family.config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(perturb * torch.randn_like(p))
    return model.to(dtype).eval()


def predict(model: torch.nn.Module, atoms: Atoms, dtype: torch.dtype) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces ``[N, 3]`` (eV/Å) of one structure."""
    graph = AtomicGraph.from_atoms(atoms, model.cutoff, model.max_neighbors, dtype=dtype)
    out = model(graph)
    return float(out["energy"].detach()[0]), out["forces"].detach().double().numpy()


def measure(family: Family, dtype: torch.dtype, data, seed: int, perturb: float) -> dict:
    """MADs and mean absolute predictions of one (family, dtype) over all structures."""
    model = build_model(family, seed, dtype, perturb)
    de, df, abs_e, abs_f = [], [], [], []
    with torch.no_grad():
        for atoms, rot in tqdm(data, desc=f"{family.label} {dtype}", file=sys.stderr):
            e0, f0 = predict(model, atoms, dtype)
            e1, f1 = predict(model, rotated(atoms, rot), dtype)
            de.append(abs(e0 - e1))
            df.append(np.abs(f0 - f1 @ rot).mean())  # R^T F(Rr): rows are F^T, so F @ R
            abs_e.append(abs(e0))
            abs_f.append(np.abs(f0).mean())
    mad_e, mad_f = 1e3 * float(np.mean(de)), 1e3 * float(np.mean(df))
    return {
        "model": family.label, "name": family.name, "config": family.config,
        "dtype": str(dtype).removeprefix("torch."), "n": len(data),
        "energy_mad_meV": mad_e, "force_mad_meV_per_A": mad_f,
        "energy_mad_pct_of_mean_abs": 100 * mad_e / (1e3 * float(np.mean(abs_e))),
        "force_mad_pct_of_mean_abs": 100 * mad_f / (1e3 * float(np.mean(abs_f))),
        "mean_abs_energy_eV": float(np.mean(abs_e)),
        "mean_abs_force_eV_per_A": float(np.mean(abs_f)),
    }  # fmt: skip


def write_json(path: Path, payload: dict) -> None:
    """Atomic write: temporary file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=1)
    os.replace(tmp, path)


def table(rows: list[dict]) -> str:
    """Table 4 layout: energy block, then force block; float64 and float32 columns."""
    by = {(r["model"], r["dtype"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = ["Random-weight models (not trained): MAD between predictions for a structure and a "
             "randomly rotated copy",
             f"({rows[0]['n']} structures; % = MAD / mean |prediction|)"]  # fmt: skip
    for what, key, pct, unit in (("Energy", "energy_mad_meV", "energy_mad_pct_of_mean_abs", "meV"),
                                 ("Force", "force_mad_meV_per_A", "force_mad_pct_of_mean_abs",
                                  "meV/Å")):  # fmt: skip
        lines.append("")
        lines.append(f"{what:<32} {'float64':>24} {'float32':>24}")
        lines.append(
            f"{'Model':<32} {'MAD [' + unit + ']':>14} {'%':>9} {'MAD [' + unit + ']':>14} {'%':>9}"
        )
        for m in models:
            cells = []
            for dt in ("float64", "float32"):
                r = by.get((m, dt))
                cells.append(f"{r[key]:>14.3g} {r[pct]:>8.2g}%" if r else f"{'-':>14} {'-':>9}")
            lines.append(f"{m:<32} {' '.join(cells)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--table", choices=("models", "est"), default="models")
    choice, rest = pre.parse_known_args(argv)
    if choice.table == "est":
        from equivariance_est import main as est_main  # same folder (scripts, not a package)

        est_main(rest)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--table",
        choices=("models", "est"),
        default="models",
        help="models: this table; est: the EST sampling table (equivariance_est.py)",
    )
    p.add_argument("--n", type=int, default=1000, help="structures (the paper: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--perturb", type=float, default=0.02, help="weight perturbation scale")
    p.add_argument("--out", default="runs/bench_equivariance")
    p.add_argument("--fresh", action="store_true", help="ignore finished rows in OUT")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    path = Path(a.out) / "equivariance.json"
    settings = {"n": a.n, "seed": a.seed, "perturb": a.perturb}
    done = []
    if path.exists() and not a.fresh:
        old = json.loads(path.read_text())
        if old.get("settings") == settings:
            done = old["rows"]
    data = structures(a.n, a.seed)
    rows = list(done)
    for family in FAMILIES:
        if family.name not in MODELS:
            print(
                f"skipping {family.label}: model {family.name!r} is not in MODELS", file=sys.stderr
            )
            continue
        for dtype in (torch.float64, torch.float32):
            if any(r["model"] == family.label and r["dtype"] == str(dtype)[6:] for r in done):
                continue
            rows.append(measure(family, dtype, data, a.seed, a.perturb))
            payload = {"settings": settings, "random_weights": True,
                       "torch": str(torch.__version__), "rows": rows}  # fmt: skip
            write_json(path, payload)
    print(table(rows))
    log(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
