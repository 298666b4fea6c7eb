"""OC-EMT-Dense: the AdsorbML benchmark with an oracle (EMT) in place of DFT, resumable.

System ``i`` (drawn from ``numpy.random.default_rng([seed, i])``): a metal from the EMT set,
an fcc(111) or fcc(100) 2x2 slab of ``layers`` layers (:func:`equicat.data.oc_emt.build_slab`:
top layer tag 1, bottom layers fixed), and an OC20 adsorbate of at most
``max_adsorbate_atoms`` atoms with EMT elements. Its placements are those of the AdsorbML
workflow (heuristic sites + random sites). For each system, in ``OUT/systems/NNNN/``:

* the AdsorbML workflow (:func:`equicat.adsorbml.workflow.run_workflow`, ``k = 5``): ML
  relaxations, anomaly filter, ranking, oracle single points on the 5 lowest;
* the dense ground truth: every placement relaxed fully by the oracle
  (``oracle_dense.json``, saved after each relaxation; each relaxation's steps in
  ``oracle_dense/NNN.traj``), flagged by the same anomaly rules (recomputed on every run)
  against the oracle-relaxed clean slab.

Then :mod:`equicat.adsorbml.metrics` gives success and speedup at k = 1..5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from equicat.adsorbml.anomalies import RULES, detect
from equicat.adsorbml.metrics import SystemOutcome, table
from equicat.adsorbml.oracle import oracle_relax, read_json, write_json
from equicat.adsorbml.placements import AdsorbateSpec, adsorbate_by_name
from equicat.adsorbml.workflow import WorkflowConfig, run_workflow

__all__ = ["BenchmarkConfig", "sample_system", "dense_ground_truth", "run_benchmark"]


@dataclass(frozen=True)
class BenchmarkConfig:
    """Settings of the OC-EMT-Dense benchmark.

    Attributes:
        systems: Number of adsorbate-surface systems.
        seed: Seed of the system draw (placements use ``seed + i``).
        layers: Slab layers.
        max_adsorbate_atoms: Largest adsorbate drawn.
        oracle_fmax: eV/Å, threshold of the full oracle relaxations.
        oracle_steps: Most steps of a full oracle relaxation.
        workflow: The AdsorbML settings (``k`` is set to 5; the placements' seed per system).
    """

    systems: int = 20
    seed: int = 0
    layers: int = 3
    max_adsorbate_atoms: int = 3
    oracle_fmax: float = 0.05
    oracle_steps: int = 300
    workflow: WorkflowConfig = field(default_factory=lambda: WorkflowConfig(k=5))


def sample_system(index: int, config: BenchmarkConfig) -> tuple[Atoms, AdsorbateSpec, dict]:
    """The slab, adsorbate and description of system ``index``."""
    from equicat.data.oc_emt import METALS, build_slab, load_adsorbates

    rng = np.random.default_rng([config.seed, index])
    pool = [a for a in load_adsorbates() if len(a.symbols) <= config.max_adsorbate_atoms]
    metal = METALS[rng.integers(len(METALS))]
    facet = ("111", "100")[rng.integers(2)]
    ads = adsorbate_by_name(pool[rng.integers(len(pool))].name)
    slab = build_slab(metal, facet, 2, config.layers)
    info = {"system": index, "metal": metal, "facet": f"fcc{facet}", "adsorbate": ads.name}
    return slab, ads, info


def dense_ground_truth(
    out: Path, placements: list[Atoms], clean_slab: Atoms, oracle: Calculator,
    config: BenchmarkConfig, progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Relax every placement fully with the oracle; resumable per placement.

    Returns:
        ``{"oracle_min": eV or None, "oracle_steps": int, "valid": int, "anomalies": {..}}``:
        the lowest energy of the valid relaxations, all oracle steps, the valid count and
        the anomalies by rule.
    """
    from tqdm.auto import tqdm

    path = out / "oracle_dense.json"
    done = read_json(path, {})
    for atoms in tqdm(placements, desc="oracle relaxations", disable=not progress):
        key = str(int(atoms.info["placement"]))
        if key in done:
            continue
        traj = out / "oracle_dense" / f"{int(key):03d}.traj"
        traj.parent.mkdir(parents=True, exist_ok=True)
        done[key] = oracle_relax(atoms, oracle, traj, config.oracle_fmax, config.oracle_steps)
        write_json(path, done)
    anomalies = {}
    for atoms in placements:
        key = str(int(atoms.info["placement"]))
        final = atoms.copy()
        final.positions = np.asarray(done[key]["positions"])
        anomalies[key] = detect(atoms, final, clean_slab, config.workflow.anomaly)
    valid = [done[k]["energy"] for k, v in anomalies.items() if not v]
    return {
        "oracle_min": min(valid) if valid else None,
        "oracle_steps": int(sum(r["steps"] for r in done.values())),
        "valid": len(valid),
        "anomalies": {rule: sum(rule in v for v in anomalies.values()) for rule in RULES},
    }


def _system(out: Path, index: int, potential: Any, oracle: Calculator,
            config: BenchmarkConfig, progress: bool) -> dict[str, Any]:  # fmt: skip
    import ase.io

    slab, ads, info = sample_system(index, config)
    wf = config.workflow
    wf = WorkflowConfig(
        **{
            **{f: getattr(wf, f) for f in wf.__dataclass_fields__},
            "k": 5,
            "placement": type(wf.placement)(
                **{**asdict(wf.placement), "seed": config.seed + index}
            ),
        }
    )
    summary = run_workflow(out, slab, ads, potential, oracle, wf, progress=progress,
                           report=False)  # fmt: skip
    placements = list(ase.io.read(out / "placements.extxyz", ":"))
    clean = slab.copy()
    clean.positions = np.asarray(read_json(out / "oracle_slab.json")["positions"])
    truth = dense_ground_truth(out, placements, clean, oracle, config, progress)
    return {**info, **truth, "summary": summary}


def run_benchmark(
    out: str | Path, potential: Any, oracle: Calculator, config: BenchmarkConfig,
    label: str = "model", progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) the benchmark in ``out``; writes and returns ``results.json``."""
    out = Path(out)
    rows = []
    for i in range(config.systems):
        rows.append(_system(out / "systems" / f"{i:04d}", i, potential, oracle, config,
                            progress))  # fmt: skip
    kept = [r for r in rows if r["oracle_min"] is not None]
    outcomes = [
        SystemOutcome(r["oracle_min"], r["oracle_steps"],
                      tuple(t["oracle_energy"] for t in r["summary"]["top_k"]))
        for r in kept
    ]  # fmt: skip
    cpu = sum(r["summary"]["ml_timing"]["cpu_s"] for r in rows)
    wall = sum(r["summary"]["ml_timing"]["wall_s"] for r in rows)
    n = sum(r["summary"]["ml_timing"]["relaxations"] for r in rows)
    result = table(outcomes, cpu / max(n, 1))
    result.update(
        label=label, config=asdict(config), systems_total=len(rows),
        systems_without_valid_oracle_relaxation=len(rows) - len(kept),
        ml_relaxations=n, ml_cpu_s=cpu, ml_wall_s=wall, wall_s_per_relaxation=wall / max(n, 1),
        placements=sum(r["summary"]["placements"] for r in rows),
        per_system=[{k: v for k, v in r.items() if k != "summary"}
                    | {"top_k": r["summary"]["top_k"], "valid_ml": r["summary"]["valid"],
                       "anomalies_ml": r["summary"]["anomalies_by_rule"]} for r in rows],
    )  # fmt: skip
    write_json(out / "results.json", result)
    return result
