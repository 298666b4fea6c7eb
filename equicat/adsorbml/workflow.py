"""The AdsorbML workflow for one adsorbate+slab system, resumable stage by stage.

Stages and the files they leave in the output directory ``DIR`` (all written atomically):

1. ``config.json`` (settings; a rerun with other placement or relaxation settings is refused;
   ``k`` and the anomaly rules may change), ``slab.extxyz`` and
   ``placements.extxyz``: the heuristic + random initial structures.
2. ``ml_relaxed.extxyz`` + ``ml_relaxed.json``: ML relaxations (batched L-BFGS), the relaxed
   clean slab first (``placement = -1``); rewritten as relaxations finish, so a rerun relaxes
   only the missing ones.
3. ``anomalies.json``: the AdsorbML rules that fired per placement
   (:mod:`equicat.adsorbml.anomalies`, surface reference = the ML-relaxed clean slab).
4. ranking of the valid structures by ML energy; ``oracle_single_points.json``: the oracle's
   energy of each of the ``k`` lowest, saved after every call (a rerun never repeats one).
5. ``oracle_slab.json`` (+ ``.traj``): the clean slab relaxed by the oracle (resumable);
   ``oracle_gas.json``: gas-phase molecules; the adsorption energy from them.
6. ``summary.json``, ``chosen.extxyz``, ``report.png`` (ML vs oracle energies) and
   ``chosen.png`` (the chosen geometry).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from equicat.adsorbml.anomalies import RULES, AnomalyConfig, detect
from equicat.adsorbml.oracle import (
    adsorbate_reference,
    element_references,
    gas_energies,
    oracle_relax,
    read_json,
    write_json,
)
from equicat.adsorbml.placements import AdsorbateSpec, PlacementConfig, placements
from equicat.adsorbml.surface import ensure_tags

__all__ = ["WorkflowConfig", "run_workflow", "ml_stage", "rank"]

# settings that only select among cached results, so a rerun may change them
FREE = ("anomaly", "k")


@dataclass(frozen=True)
class WorkflowConfig:
    """Settings of one AdsorbML run.

    Attributes:
        placement: How initial structures are drawn.
        k: Oracle single points on the k lowest valid ML energies.
        fmax: eV/Å, ML relaxation threshold (AdsorbML: 0.02).
        steps: Most ML relaxation steps (AdsorbML: 300).
        batch_size: Structures relaxed together.
        optimizer: ``"lbfgs"`` or ``"fire"``.
        oracle_fmax: eV/Å, threshold of the oracle's clean-slab relaxation.
        anomaly: Bond multipliers of the anomaly rules.
    """

    placement: PlacementConfig = field(default_factory=PlacementConfig)
    k: int = 5
    fmax: float = 0.02
    steps: int = 300
    batch_size: int = 16
    optimizer: str = "lbfgs"
    oracle_fmax: float = 0.05
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


def _write_frames(path: Path, frames: list[Atoms]) -> None:
    from equicat.data.dataset import write_frames

    write_frames(path, frames)


def _read_frames(path: Path) -> list[Atoms]:
    import ase.io

    return list(ase.io.read(path, ":")) if path.is_file() else []


def _setup(out: Path, slab: Atoms, adsorbate: AdsorbateSpec, config: WorkflowConfig) -> list:
    """Stage 1: write or check ``config.json``; write or reuse the placements."""
    cached = {k: v for k, v in asdict(config).items() if k not in FREE}
    settings = {
        "config": cached, "adsorbate": adsorbate.name,
        "adsorbate_symbols": adsorbate.atoms.get_chemical_symbols(),
        "binding_indices": list(adsorbate.binding_indices),
        "slab_formula": slab.get_chemical_formula(), "slab_natoms": len(slab),
    }  # fmt: skip
    old = read_json(out / "config.json")
    if old is not None and isinstance(old.get("config"), dict):
        old["config"] = {k: v for k, v in old["config"].items() if k not in FREE}
    if old is not None and old != settings:
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        raise ValueError(
            f"{out} holds a run with other settings ({', '.join(diff)}); use a fresh --out "
            "directory or the original settings"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", settings)
    if not (out / "placements.extxyz").is_file():
        _write_frames(out / "slab.extxyz", [slab])
        _write_frames(out / "placements.extxyz", placements(slab, adsorbate, config.placement))
    return _read_frames(out / "placements.extxyz")


def ml_stage(
    out: Path, slab: Atoms, initial: list[Atoms], potential: Any, config: WorkflowConfig,
    progress: bool = True,
) -> tuple[Atoms, list[Atoms], dict[str, float]]:  # fmt: skip
    """Stage 2: ML-relax the clean slab and every placement, resuming from ``ml_relaxed``.

    Returns:
        The relaxed clean slab, the relaxed placements (input order) and timing
        (``cpu_s``, ``wall_s``, ``relaxations`` of this call).
    """
    import time

    from tqdm.auto import tqdm

    from equicat.relax import relax_iter, relaxed_atoms

    done = {int(a.info["placement"]): a for a in _read_frames(out / "ml_relaxed.extxyz")}
    todo = [(-1, slab)] if -1 not in done else []
    todo += [(int(a.info["placement"]), a) for a in initial if int(a.info["placement"]) not in done]
    cpu, wall = time.process_time(), time.perf_counter()
    if todo:
        bar = tqdm(total=len(todo), desc="ML relaxations", disable=not progress)
        for n, res in enumerate(relax_iter(
            [a for _, a in todo], potential, optimizer=config.optimizer,
            batch_size=config.batch_size, fmax=config.fmax, steps=config.steps,
        )):  # fmt: skip
            pid, atoms = todo[res.index]
            frame = relaxed_atoms(atoms, res)
            frame.info["placement"] = pid
            frame.info["ml_energy"] = frame.info.pop("energy")  # extxyz reads "energy" as a label
            done[pid] = frame
            bar.update(1)
            if (n + 1) % config.batch_size == 0 or n + 1 == len(todo):
                _write_frames(out / "ml_relaxed.extxyz", [done[p] for p in sorted(done)])
        bar.close()
    timing = read_json(out / "ml_timing.json", {"cpu_s": 0.0, "wall_s": 0.0, "relaxations": 0})
    if todo:  # accumulated over reruns: the cost of every relaxation made for this run
        timing = {"cpu_s": timing["cpu_s"] + time.process_time() - cpu,
                  "wall_s": timing["wall_s"] + time.perf_counter() - wall,
                  "relaxations": timing["relaxations"] + len(todo)}  # fmt: skip
        write_json(out / "ml_timing.json", timing)
    relaxed = [done[int(a.info["placement"])] for a in initial]
    return done[-1], relaxed, timing


def rank(
    initial: list[Atoms], relaxed: list[Atoms], clean: Atoms, config: AnomalyConfig
) -> tuple[dict[int, list[str]], list[int]]:
    """Stage 3: anomalies per placement and the valid placements sorted by ML energy."""
    anomalies = {
        int(a.info["placement"]): detect(a, r, clean, config)
        for a, r in zip(initial, relaxed, strict=True)
    }
    valid = [int(r.info["placement"]) for r in relaxed if not anomalies[int(r.info["placement"])]]
    energy = {int(r.info["placement"]): float(r.info["ml_energy"]) for r in relaxed}
    return anomalies, sorted(valid, key=lambda p: energy[p])


def single_points(
    out: Path, frames: dict[int, Atoms], order: list[int], oracle: Calculator
) -> dict[int, float]:
    """Stage 4: oracle energies of ``order``, each saved as soon as it is computed."""
    path = out / "oracle_single_points.json"
    energies = {int(k): v for k, v in read_json(path, {}).items()}
    for pid in order:
        if pid in energies:
            continue
        atoms = frames[pid].copy()
        atoms.calc = oracle
        energies[pid] = float(atoms.get_potential_energy())
        write_json(path, {str(k): v for k, v in sorted(energies.items())})
    return energies


def _adsorption(out: Path, slab: Atoms, symbols: list[str], oracle: Calculator,
                config: WorkflowConfig) -> tuple[float, dict[str, Any]]:  # fmt: skip
    """Stage 5: oracle clean-slab energy and the gas-phase reference of the adsorbate."""
    path = out / "oracle_slab.json"
    res = read_json(path)
    if res is None:
        res = oracle_relax(slab, oracle, out / "oracle_slab.traj", fmax=config.oracle_fmax)
        write_json(path, res)
    eps = element_references(gas_energies(oracle, out / "oracle_gas.json"))
    refs = {"slab_energy": res["energy"], "slab_oracle_steps": res["steps"],
            "element_references": eps}  # fmt: skip
    try:
        return adsorbate_reference(symbols, eps) + res["energy"], refs
    except ValueError as err:
        refs["note"] = str(err)
        return float("nan"), refs


def run_workflow(
    out: str | Path,
    slab: Atoms,
    adsorbate: AdsorbateSpec,
    potential: Any,
    oracle: Calculator,
    config: WorkflowConfig = WorkflowConfig(),
    *,
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the AdsorbML workflow in ``out``; returns the summary it writes.

    Args:
        out: Output directory (created).
        slab: Clean slab with OC20 tags (see :mod:`equicat.adsorbml.surface`).
        adsorbate: The adsorbate.
        potential: The ML model: a ``Predictor``, a ``ModelPotential`` or anything
            :func:`equicat.relax.as_potential` accepts.
        oracle: ASE calculator for single points and references.
        config: Settings.
        progress: tqdm progress bars.
        report: Write the PNG report and rendering.
    """
    out = Path(out)
    slab = ensure_tags(slab)
    initial = _setup(out, slab, adsorbate, config)
    clean, relaxed, timing = ml_stage(out, slab, initial, potential, config, progress)
    anomalies, order = rank(initial, relaxed, clean, config.anomaly)
    write_json(out / "anomalies.json", {str(k): v for k, v in anomalies.items()})
    frames = {int(r.info["placement"]): r for r in relaxed}
    top = order[: config.k]
    sp = single_points(out, frames, top, oracle)
    reference, refs = _adsorption(out, slab, adsorbate.atoms.get_chemical_symbols(), oracle,
                                  config)  # fmt: skip
    summary = _summary(initial, relaxed, anomalies, top, sp, reference, refs, timing)
    if top:
        chosen = frames[summary["chosen_placement"]].copy()
        chosen.info["oracle_energy"] = summary["best_oracle_energy"]
        _write_frames(out / "chosen.extxyz", [chosen])
        summary["chosen_structure"] = str(out / "chosen.extxyz")
    write_json(out / "summary.json", summary)
    if report:
        from equicat.adsorbml.report import write_report

        write_report(out, summary, frames.get(summary.get("chosen_placement", -2)))
    return summary


def _summary(initial, relaxed, anomalies, top, sp, reference, refs, timing) -> dict[str, Any]:
    ml = {int(r.info["placement"]): float(r.info["ml_energy"]) for r in relaxed}
    by_rule = {rule: sum(rule in v for v in anomalies.values()) for rule in RULES}
    summary: dict[str, Any] = {
        "placements": len(initial),
        "heuristic_placements": sum(a.info["placement_kind"] == "heuristic" for a in initial),
        "random_placements": sum(a.info["placement_kind"] == "random" for a in initial),
        "ml_converged": sum(bool(r.info.get("converged")) for r in relaxed),
        "valid": sum(not v for v in anomalies.values()),
        "anomalies_by_rule": by_rule,
        "top_k": [{"placement": p, "ml_energy": ml[p], "oracle_energy": sp[p]} for p in top],
        "best_oracle_energy": None, "adsorption_energy": None, "chosen_placement": None,
        "chosen_structure": None, "references": refs, "ml_timing": timing,
    }  # fmt: skip
    if top:
        best = min(top, key=lambda p: sp[p])
        e_ads = sp[best] - reference
        summary.update(best_oracle_energy=sp[best], chosen_placement=best,
                       adsorption_energy=None if np.isnan(e_ads) else e_ads)  # fmt: skip
    return summary
