"""QM9 (130,831 molecules, B3LYP/6-31G(2df,p)) from the ``qm9pack`` package, in equicat units.

``qm9pack`` ships the QM9 table as CSV files (Hartree atomic units for energies). We read
those files directly (``qm9pack``'s own ``import`` needs ``pkg_resources``, which recent
setuptools no longer has) and convert once, here. Install with ``pip install 'equicat[qm9]'``.

The 12 standard targets, stored in ``atoms.info`` under these names:

=========  ==========================  ============  ==================================
name       qm9pack column              unit          meaning
=========  ==========================  ============  ==================================
``mu``     Dipole_debye                D             dipole moment
``alpha``  Polarizability_bohr3        a0^3          isotropic polarizability
``homo``   HOMO_au                     eV            HOMO energy
``lumo``   LUMO_au                     eV            LUMO energy
``gap``    HOMO_LUMO_gap_au            eV            LUMO - HOMO
``r2``     R2_bohr2                    a0^2          electronic spatial extent <R^2>
``zpve``   ZPVE_au                     eV            zero-point vibrational energy
``U0``     InternalEnergy_0K_au        eV            internal energy at 0 K
``U``      InternalEnergy_298K_au      eV            internal energy at 298.15 K
``H``      Enthalphy_298K_au           eV            enthalpy at 298.15 K
``G``      GibbsFreeEnergy_298K_au     eV            free energy at 298.15 K
``Cv``     Heatcapacity_Cv_cal_mol_K   cal/(mol K)   heat capacity at 298.15 K
=========  ==========================  ============  ==================================

Hartree -> eV uses ``ase.units.Hartree``. Atomization values ``U0_atom``, ``U_atom``,
``H_atom``, ``G_atom`` (eV) subtract the QM9 free-atom references (:data:`ATOMREF_HARTREE`,
the values published with QM9 for H, C, N, O, F; qm9pack does not ship them).
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Hartree

__all__ = [
    "ATOMREF_HARTREE",
    "QM9_SIZE",
    "TARGETS",
    "UNITS",
    "QM9Split",
    "atomization",
    "atomref",
    "ENERGY_TARGETS",
    "load_qm9",
    "load_qm9_subset",
    "qm9_split",
    "qm9_subset_indices",
]

QM9_SIZE = 130_831
# name -> (qm9pack column, factor to our unit, unit)
TARGETS: dict[str, tuple[str, float, str]] = {
    "mu": ("Dipole_debye", 1.0, "D"),
    "alpha": ("Polarizability_bohr3", 1.0, "a0^3"),
    "homo": ("HOMO_au", Hartree, "eV"),
    "lumo": ("LUMO_au", Hartree, "eV"),
    "gap": ("HOMO_LUMO_gap_au", Hartree, "eV"),
    "r2": ("R2_bohr2", 1.0, "a0^2"),
    "zpve": ("ZPVE_au", Hartree, "eV"),
    "U0": ("InternalEnergy_0K_au", Hartree, "eV"),
    "U": ("InternalEnergy_298K_au", Hartree, "eV"),
    "H": ("Enthalphy_298K_au", Hartree, "eV"),
    "G": ("GibbsFreeEnergy_298K_au", Hartree, "eV"),
    "Cv": ("Heatcapacity_Cv_cal_mol_K", 1.0, "cal/(mol K)"),
}
UNITS = {name: unit for name, (_, _, unit) in TARGETS.items()}
# QM9 free-atom energies (Hartree), B3LYP/6-31G(2df,p): Z -> (U0, U, H, G)
ATOMREF_HARTREE: dict[int, tuple[float, float, float, float]] = {
    1: (-0.500273, -0.498857, -0.497912, -0.510927),
    6: (-37.846772, -37.845355, -37.844411, -37.861317),
    7: (-54.583861, -54.582445, -54.581501, -54.598897),
    8: (-75.064579, -75.063163, -75.062219, -75.079532),
    9: (-99.718730, -99.717314, -99.716370, -99.733544),
}
_ATOMREF_TARGETS = ("U0", "U", "H", "G")
# the total-energy targets (eV) a model's energy output can be trained on
ENERGY_TARGETS = _ATOMREF_TARGETS
_CSV_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")


def atomref(target: str) -> dict[int, float]:
    """Free-atom reference of ``target`` (one of U0, U, H, G) per element, eV."""
    if target not in _ATOMREF_TARGETS:
        raise ValueError(f"QM9 atom references exist for {list(_ATOMREF_TARGETS)}, not {target!r}")
    column = _ATOMREF_TARGETS.index(target)
    return {z: refs[column] * Hartree for z, refs in ATOMREF_HARTREE.items()}


def atomization(numbers: Sequence[int] | np.ndarray, value: float, target: str) -> float:
    """``value`` (eV) minus the summed free-atom references of ``numbers`` for ``target``."""
    refs = atomref(target)
    try:
        return float(value - sum(refs[int(z)] for z in numbers))
    except KeyError as err:
        raise ValueError(f"QM9 has atom references for H, C, N, O, F only, not Z={err}") from err


def data_dir() -> Path:
    """The folder of qm9pack's CSV files (found without importing qm9pack)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("QM9 needs the 'qm9pack' package: pip install 'equicat[qm9]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [name for name in _CSV_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"qm9pack is installed but {folder} lacks {missing}; reinstall it")
    return folder


def _rows(folder: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    for name in _CSV_FILES:
        with open(folder / name, newline="") as fh:
            yield from csv.DictReader(fh)


def _molecule(row: dict[str, str]) -> Atoms:
    """One CSV row as ``Atoms`` (no cell, not periodic) with targets in ``info``."""
    symbols = ast.literal_eval(row["Elements"])
    positions = np.asarray(ast.literal_eval(row["XYZ_Ang"]), dtype=np.float64)
    atoms = Atoms(symbols=symbols, positions=positions.reshape(len(symbols), 3))
    info = {name: float(row[column]) * factor for name, (column, factor, _) in TARGETS.items()}
    for target in _ATOMREF_TARGETS:
        info[f"{target}_atom"] = atomization(atoms.numbers, info[target], target)
    info.update(qm9_index=int(row["Index"]), smiles=row["SMILES"])
    atoms.info.update(info)
    return atoms


def load_qm9(limit: int | None = None, cache: str | os.PathLike | None = None) -> list[Atoms]:
    """QM9 molecules in qm9pack's order, targets (and atomization energies) in ``info``.

    Args:
        limit: Read only the first ``limit`` molecules (all 130,831 when ``None``).
        cache: An equicat HDF5 file (``.h5``): read from it when it exists, else parse the CSV
            files and write it (only for a full read), so later loads skip the CSV parsing.

    Returns:
        ``Atoms`` with positions in Å, ``info`` holding the 12 targets (units in
        :data:`UNITS`), ``U0_atom``/``U_atom``/``H_atom``/``G_atom`` in eV, ``qm9_index``
        (the QM9 molecule number, 1-based) and ``smiles``.
    """
    from equicat.data import formats

    if cache is not None and Path(cache).exists():
        frames = formats.read_frames(cache, "hdf5")
        return frames if limit is None else frames[:limit]
    folder = data_dir()
    frames: list[Atoms] = []
    for row in _rows(folder):
        if limit is not None and len(frames) >= limit:
            break
        frames.append(_molecule(row))
    if cache is not None and limit is None:
        formats.write_frames(cache, frames, "hdf5")
    return frames


@dataclass(frozen=True)
class QM9Split:
    """Index arrays into the QM9 list (disjoint, covering it)."""

    # [n_train] int64
    train: np.ndarray
    # [n_val] int64
    val: np.ndarray
    # [n - n_train - n_val] int64
    test: np.ndarray


def qm9_split(
    n: int = QM9_SIZE, seed: int = 0, n_train: int = 110_000, n_val: int = 10_000
) -> QM9Split:
    """Seeded split of ``n`` molecules: ``n_train`` / ``n_val`` / the rest, from one permutation.

    The permutation is ``numpy.random.default_rng(seed).permutation(n)``, so a split is a pure
    function of ``(n, seed, n_train, n_val)``.
    """
    if n_train < 0 or n_val < 0 or n_train + n_val > n:
        raise ValueError(f"cannot split {n} molecules into {n_train} train + {n_val} val")
    order = np.random.default_rng(seed).permutation(n)
    return QM9Split(
        train=np.sort(order[:n_train]),
        val=np.sort(order[n_train : n_train + n_val]),
        test=np.sort(order[n_train + n_val :]),
    )


def load_qm9_subset(indices: Sequence[int] | np.ndarray) -> list[Atoms]:
    """The QM9 molecules at ``indices`` (0-based positions in qm9pack's order), in that order.

    Only the requested rows are parsed (a scan of the CSV files takes about a second), so a
    few thousand molecules spread over the whole set load without parsing all 130,831.

    Args:
        indices: [K] distinct positions ``0 <= i < QM9_SIZE``, e.g. from :func:`qm9_split`.

    Returns:
        ``K`` molecules as :func:`load_qm9` builds them.
    """
    wanted = [int(i) for i in np.asarray(indices).reshape(-1)]
    if len(set(wanted)) != len(wanted):
        raise ValueError("load_qm9_subset got repeated indices; pass each molecule once")
    bad = [i for i in wanted if not 0 <= i < QM9_SIZE]
    if bad:
        raise ValueError(f"QM9 index {bad[0]} is outside 0..{QM9_SIZE - 1}")
    position = {i: k for k, i in enumerate(wanted)}
    frames: list[Atoms | None] = [None] * len(wanted)
    for row_number, row in enumerate(_rows(data_dir())):
        k = position.get(row_number)
        if k is not None:
            frames[k] = _molecule(row)
    missing = [wanted[k] for k, a in enumerate(frames) if a is None]
    if missing:
        raise FileNotFoundError(f"qm9pack's CSV files hold no row {missing[0]}; reinstall it")
    return [a for a in frames if a is not None]


def qm9_subset_indices(n_train: int, n_val: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random subsets of the standard split's train and val parts.

    The molecules come from ``qm9_split(seed=seed)`` (110k / 10k / rest), so validation
    molecules of a small run are never in the training part of a full run with the same seed.
    QM9 is ordered roughly by size, so the subsets are drawn at random
    (``default_rng([seed, 1])``), not taken from the front.

    Args:
        n_train: Training molecules, ``<= 110_000``.
        n_val: Validation molecules, ``<= 10_000``.
        seed: Seeds both the split and the draw.

    Returns:
        ``(train [n_train], val [n_val])`` sorted int64 indices for :func:`load_qm9_subset`.
    """
    split = qm9_split(seed=seed)
    if not (1 <= n_train <= len(split.train) and 1 <= n_val <= len(split.val)):
        raise ValueError(
            f"QM9 subsets need 1..{len(split.train)} training and 1..{len(split.val)} "
            f"validation molecules, got {n_train} and {n_val}"
        )
    rng = np.random.default_rng([seed, 1])
    train = np.sort(rng.permutation(split.train)[:n_train])
    val = np.sort(rng.permutation(split.val)[:n_val])
    return train, val
