"""AdsorbML success rate and speedup at k (Lan et al. 2022; EquiformerV2 paper Table 3).

For each system (adsorbate-surface pair) the ground truth is the lowest oracle energy over
full oracle relaxations of all its placements, anomalous ones excluded (``oracle_min``). The
ML route ranks the valid ML-relaxed structures by ML energy and runs one oracle single point
on each of the ``k`` lowest.

* **success at k**: ``min(oracle single points of the top k) <= oracle_min + 0.1 eV``; a
  system with no valid ML structure fails. Reported as the fraction of systems.
* **speedup at k**: oracle steps of all full relaxations, summed over systems, divided by the
  oracle single points spent at k (``min(k, valid ML structures)`` per system).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SUCCESS_MARGIN", "SystemOutcome", "success_rate", "speedup", "table"]

SUCCESS_MARGIN = 0.1  # eV


@dataclass(frozen=True)
class SystemOutcome:
    """What the metrics need from one system.

    Attributes:
        oracle_min: eV, lowest oracle energy over the valid full oracle relaxations.
        oracle_steps: Oracle steps (energy + force calls) of all full relaxations.
        ranked_single_points: eV, oracle single-point energies of the valid ML structures in
            order of increasing ML energy (at least the first 5 when there are that many).
    """

    oracle_min: float
    oracle_steps: int
    ranked_single_points: tuple[float, ...]


def _success(s: SystemOutcome, k: int, margin: float) -> bool:
    top = s.ranked_single_points[:k]
    return bool(top) and min(top) <= s.oracle_min + margin


def success_rate(systems: Sequence[SystemOutcome], k: int, margin: float = SUCCESS_MARGIN) -> float:
    """Fraction of systems whose best top-k single point is within ``margin`` eV of the min."""
    if not systems:
        raise ValueError("no systems to score")
    return sum(_success(s, k, margin) for s in systems) / len(systems)


def speedup(systems: Sequence[SystemOutcome], k: int) -> float:
    """Oracle steps of the dense relaxations / oracle single points spent at ``k``."""
    spent = sum(min(k, len(s.ranked_single_points)) for s in systems)
    total = sum(s.oracle_steps for s in systems)
    return float("inf") if spent == 0 else total / spent


def table(
    systems: Sequence[SystemOutcome], seconds_per_relaxation: float, ks: Sequence[int] = range(1, 6)
) -> dict:
    """``{"k": {"success_rate": .., "speedup": ..}, "seconds_per_relaxation": ..}``."""
    rows = {
        str(k): {"success_rate": success_rate(systems, k), "speedup": speedup(systems, k)}
        for k in ks
    }
    return {"systems": len(systems), "seconds_per_relaxation": seconds_per_relaxation, "k": rows}


def format_table(result: dict, label: str) -> str:
    """Table 3 of the EquiformerV2 paper: seconds per relaxation, then success / speedup."""
    ks = list(result["k"])
    head = ["Model", "s / relax"]
    cells = [label, f"{result['seconds_per_relaxation']:.2f}"]
    for k in ks:
        head += [f"k={k} success", f"k={k} speedup"]
        row = result["k"][k]
        cells += [f"{100 * row['success_rate']:.1f}%", f"{row['speedup']:.1f}"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        "| " + " | ".join(cells) + " |",
    ]
    return "\n".join(lines)
