"""The oracle (any ASE calculator), its resumable relaxations and gas-phase references.

The oracle stands in for DFT: ``"emt"`` (ASE's EMT), the name of any ASE calculator
(``ase.calculators.calculator.get_calculator_class``, e.g. ``"vasp"``, ``"espresso"``,
``"gpaw"``; configured through the environment the way that calculator documents) or
``"module:callable"``, a Python entry point returning a calculator.

Adsorption energies follow the OC20 convention,
``E_ads = E(slab+adsorbate) - E(slab) - sum_i n_i eps_i``, with per-element references from
gas-phase molecules relaxed by the same oracle:
``eps_H = E(H2)/2``, ``eps_O = E(H2O) - E(H2)``, ``eps_C = E(CO) - eps_O``, ``eps_N = E(N2)/2``.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

__all__ = [
    "GAS_MOLECULES",
    "element_references",
    "gas_energies",
    "oracle_relax",
    "read_json",
    "resolve_oracle",
    "write_json",
]

GAS_MOLECULES = ("H2", "H2O", "CO", "N2")
BOX = 15.0  # Å, periodic box around each gas molecule


def resolve_oracle(spec: str | Calculator | Callable[[], Calculator]) -> Calculator:
    """An ASE calculator from ``"emt"``, an ASE calculator name or ``"module:callable"``."""
    if isinstance(spec, Calculator):
        return spec
    if callable(spec):
        return spec()
    if spec.lower() == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if ":" in spec:
        module, _, name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot load oracle entry point {spec!r}: {err}") from err
        return factory()
    from ase.calculators.calculator import get_calculator_class

    try:
        return get_calculator_class(spec.lower())()
    except Exception as err:
        raise ValueError(
            f"cannot build the ASE calculator {spec!r} ({err}); pass 'emt', an ASE calculator "
            "name set up through its environment variables, or 'module:callable'"
        ) from err


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when the file does not exist."""
    return json.loads(path.read_text()) if path.is_file() else default


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON atomically (temporary file + rename)."""
    from equicat.data.dataset import atomic_open

    with atomic_open(path) as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    return path


def oracle_relax(
    atoms: Atoms, oracle: Calculator, traj: Path, fmax: float = 0.05, steps: int = 300
) -> dict[str, Any]:
    """Relax ``atoms`` with the oracle (ASE BFGS), every step saved to ``traj``; resumable.

    When ``traj`` holds frames from an interrupted run, the relaxation restarts from the last
    one instead of from ``atoms`` (earlier oracle calls are not repeated).

    Returns:
        ``{"energy": eV, "steps": oracle calls made in total, "converged": bool,
        "positions": [[x, y, z], ...] Å}``.
    """
    from ase.io import Trajectory
    from ase.optimize import BFGS

    atoms = atoms.copy()
    done = 0
    if traj.is_file() and traj.stat().st_size > 0:
        frames = list(Trajectory(str(traj)))
        if frames:
            atoms.positions = frames[-1].positions
            done = len(frames)
    atoms.calc = oracle
    writer = Trajectory(str(traj), "a", atoms)
    try:
        opt = BFGS(atoms, logfile=None)
        opt.attach(writer.write, interval=1)
        converged = bool(opt.run(fmax=fmax, steps=max(steps - done, 0)))
    finally:
        writer.close()
    calls = len(list(Trajectory(str(traj))))
    return {
        "energy": float(atoms.get_potential_energy()),
        "steps": calls,
        "converged": converged,
        "positions": atoms.positions.tolist(),
    }


def gas_energies(oracle: Calculator, cache: Path, fmax: float = 0.02) -> dict[str, float]:
    """eV, oracle energies of the relaxed :data:`GAS_MOLECULES`, cached in ``cache`` (JSON).

    Each molecule is written to the cache as soon as it is done; a rerun computes only the
    missing ones.
    """
    from ase.build import molecule

    energies = read_json(cache, {})
    for name in GAS_MOLECULES:
        if name in energies:
            continue
        mol = molecule(name)
        mol.set_cell([BOX, BOX, BOX])
        mol.center()
        mol.pbc = True
        res = oracle_relax(mol, oracle, cache.with_name(f"{cache.stem}_{name}.traj"), fmax, 200)
        energies[name] = res["energy"]
        write_json(cache, energies)
    return energies


def element_references(gas: dict[str, float]) -> dict[str, float]:
    """Per-atom references (eV) of H, O, C, N from the gas energies (see the module docstring)."""
    eps = {"H": 0.5 * gas["H2"]}
    eps["O"] = gas["H2O"] - gas["H2"]
    eps["C"] = gas["CO"] - eps["O"]
    eps["N"] = 0.5 * gas["N2"]
    return eps


def adsorbate_reference(symbols: list[str], eps: dict[str, float]) -> float:
    """eV, sum_i n_i eps_i over the adsorbate's atoms.

    Raises:
        ValueError: An element has no gas-phase reference.
    """
    counts = Counter(symbols)
    missing = sorted(set(counts) - set(eps))
    if missing:
        raise ValueError(
            f"no gas-phase reference for {missing}; references exist for {sorted(eps)}"
        )
    return float(np.sum([n * eps[s] for s, n in counts.items()]))
