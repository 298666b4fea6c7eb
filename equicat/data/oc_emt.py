"""OC-EMT: the OC20 S2EF generation recipe with a reference calculator in place of VASP.

Each system is a metal fcc(111) or fcc(100) slab (optionally a random binary alloy of two EMT
metals, :attr:`Recipe.alloy_fraction`) with one OC20 adsorbate placed over a surface site,
relaxed by BFGS with the oracle (ASE's EMT by default). Every ``keep_every``-th frame of
the relaxation, the relaxed frame and a few rattled copies of it are labelled with the oracle's
energy (eV) and forces (eV/Å, on every atom including fixed ones) and kept; this is the
structure-to-energy-and-forces (S2EF) data OC20 trains on.

Everything about system ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a
system does not depend on how many others are generated or in which chunk it lands.

Labels are stored the way ASE's extxyz reader returns them: a ``SinglePointCalculator``
holding ``energy`` and ``forces``. ``info`` holds ``system_id`` (int), ``frame_kind``
(``"relax"`` or ``"rattle"``), ``frame_index``, ``metal``, ``facet`` (``"fcc111"`` or
``"fcc100"``), ``adsorbate``, ``site``, and on alloy systems ``alloy`` (the second metal) and
``alloy_fraction`` (its share of the slab atoms).

The adsorbate is placed by a simple rule (:func:`place_adsorbate`: binding atoms a set height
over a high-symmetry site) or, when a ``placer`` is passed, by that function; ``equicat
datagen oc-emt --placement adsorbml`` passes the AdsorbML placement code (heuristic and random
sites, covalent-radius heights), which lives above this layer and so is injected, not imported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import fcc100, fcc111
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms
from ase.optimize import BFGS

from equicat.data.oc_emt_splits import SPLIT_FILES, SPLITS, Holdout, split_systems

__all__ = [
    "EMT_ELEMENTS",
    "METALS",
    "Adsorbate",
    "Recipe",
    "Placer",
    "load_adsorbates",
    "build_slab",
    "place_adsorbate",
    "sample_system",
    "label",
    "generate_system",
    "generate",
    "write_dataset",
    "Holdout",
    "sample_info",
]

# elements ASE's EMT has parameters for
EMT_ELEMENTS = frozenset({"Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au", "H", "C", "N", "O"})
METALS = ("Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")
SITES = {"111": ("ontop", "bridge", "fcc", "hcp"), "100": ("ontop", "bridge", "hollow")}
VACUUM = 8.0  # Å, below the slab and above the adsorbate's top atom
MIN_CLEARANCE = 1.0  # Å, adsorbate atoms are lifted until this far from every slab atom
ALLOY_SHARES = (0.25, 0.5)  # share of slab atoms that are the second metal of an alloy


@dataclass(frozen=True)
class Adsorbate:
    """One OC20 adsorbate in its gas-phase geometry.

    Attributes:
        name: OC20 name, ``*`` marking binding atoms (e.g. ``"*OH"``).
        symbols: Element of each atom.
        positions: [n, 3] Å, gas-phase positions (nested tuples; ``np.asarray`` them).
        binding_indices: Atoms that bind to the surface.
    """

    name: str
    symbols: tuple[str, ...]
    positions: tuple[tuple[float, float, float], ...]
    binding_indices: tuple[int, ...]


def load_adsorbates(elements: frozenset[str] = EMT_ELEMENTS) -> list[Adsorbate]:
    """The OC20 adsorbates (package data, MIT licence) whose elements are all in ``elements``."""
    text = resources.files("equicat.data").joinpath("files/oc20_adsorbates.json").read_text()
    out = []
    for item in json.loads(text)["adsorbates"]:
        if set(item["symbols"]) <= elements:
            out.append(
                Adsorbate(
                    name=item["name"],
                    symbols=tuple(item["symbols"]),
                    positions=tuple(tuple(float(x) for x in p) for p in item["positions"]),
                    binding_indices=tuple(int(i) for i in item["binding_indices"]),
                )
            )
    return out


def build_slab(
    metal: str, facet: str, size: int, layers: int, lattice_constant: float | None = None
) -> Atoms:
    """An fcc slab with OC20 tags and its lower layers fixed.

    Tags: 1 on the top layer (the surface), 0 below it. The top two layers relax; the
    ``layers - 2`` bottom layers are held by ``FixAtoms``.

    Args:
        metal: Element symbol.
        facet: ``"111"`` or ``"100"``.
        size: Surface repeats along both in-plane vectors.
        layers: Number of atomic layers.
        lattice_constant: Cubic fcc lattice constant, Å (default: ASE's reference value for
            ``metal``).
    """
    builders = {"111": fcc111, "100": fcc100}
    if facet not in builders:
        raise ValueError(f"facet must be '111' or '100', got {facet!r}")
    if layers < 2:
        raise ValueError(f"a slab needs at least 2 layers, got {layers}")
    slab = builders[facet](metal, (size, size, layers), a=lattice_constant, vacuum=VACUUM)
    layer = slab.get_tags()  # ase.build: 1 = top layer, counting down
    slab.set_tags(np.where(layer == 1, 1, 0))
    slab.set_constraint(FixAtoms(indices=np.flatnonzero(layer > 2)))
    return slab


def _rotation_to_z(v: np.ndarray) -> np.ndarray:
    """[3, 3] rotation taking unit vector ``v`` to +z (Rodrigues; a flip when ``v = -z``)."""
    z = np.array([0.0, 0.0, 1.0])
    axis, c = np.cross(v, z), float(v @ z)
    if np.linalg.norm(axis) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def place_adsorbate(
    slab: Atoms, adsorbate: Adsorbate, site: str, rng: np.random.Generator, height: float = 2.0
) -> Atoms:
    """Slab + adsorbate, binding atom(s) ``height`` Å above a surface ``site``.

    The adsorbate is turned so that its centroid lies straight above the centroid of its
    binding atoms, spun by a random angle about z, and its binding centroid put over the site
    (shifted by a random lattice offset and up to 0.2 Å in-plane jitter). It is then lifted
    in 0.2 Å steps until no adsorbate atom is within ``MIN_CLEARANCE`` of a slab atom, and
    the cell height set to leave ``VACUUM`` above it. Adsorbate atoms get tag 2.
    """
    info = slab.info["adsorbate_info"]
    pos = np.asarray(adsorbate.positions, dtype=float).reshape(-1, 3)
    pos = pos - pos[list(adsorbate.binding_indices)].mean(0)
    up = pos.mean(0)
    if np.linalg.norm(up) > 1e-6:
        pos = pos @ _rotation_to_z(up / np.linalg.norm(up)).T
    angle = rng.uniform(0.0, 2.0 * np.pi)
    c, s = np.cos(angle), np.sin(angle)
    pos = pos @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
    size = int(round(slab.cell.lengths()[0] / np.linalg.norm(info["cell"][0])))
    frac = np.asarray(info["sites"][site]) + rng.integers(0, size, 2)
    xy = frac @ info["cell"] + rng.uniform(-0.2, 0.2, 2)
    top = slab.positions[slab.get_tags() == 1, 2].max()
    ads = Atoms(adsorbate.symbols, positions=pos + np.array([xy[0], xy[1], top + height]))
    ads.set_tags(2)
    atoms = slab.copy()
    atoms.info.pop("adsorbate_info", None)
    n_slab = len(atoms)
    atoms += ads
    for _ in range(50):
        if _cross_distances(atoms, n_slab).min() >= MIN_CLEARANCE:
            break
        atoms.positions[n_slab:, 2] += 0.2
    cell = atoms.cell.array.copy()
    cell[2, 2] = atoms.positions[:, 2].max() + VACUUM
    atoms.set_cell(cell)
    return atoms


def _cross_distances(atoms: Atoms, n_slab: int) -> np.ndarray:
    """[n_ads, n_slab] Å, minimum-image distances from adsorbate atoms to slab atoms."""
    from ase.geometry import get_distances

    _, d = get_distances(
        atoms.positions[n_slab:], atoms.positions[:n_slab], cell=atoms.cell, pbc=atoms.pbc
    )
    return d


# places an adsorbate on a slab: (slab, adsorbate, rng) -> slab + adsorbate (tags 2), with
# info["site"] naming the site kind
Placer = Callable[[Atoms, Adsorbate, np.random.Generator], Atoms]


def sample_system(
    index: int,
    seed: int,
    adsorbates: Sequence[Adsorbate],
    *,
    alloy_fraction: float = 0.0,
    placer: Placer | None = None,
) -> Atoms:
    """The unrelaxed structure of system ``index``, drawn from ``default_rng([seed, index])``.

    Metal uniform over :data:`METALS`; facet (111) or (100); 2x2 or 3x3 surface (3x3 for
    adsorbates of more than three atoms, so they do not touch their periodic images); 3 or 4
    layers; adsorbate uniform over ``adsorbates``; site uniform over the facet's high-symmetry
    sites; binding height uniform in [1.8, 2.2] Å. ``info`` records the choices.

    With probability ``alloy_fraction`` (drawn from a separate stream, so the other systems
    are the same whatever the fraction) the slab is a random binary alloy: a second metal
    uniform over the other :data:`METALS` takes a share (from :data:`ALLOY_SHARES`) of the
    slab sites, chosen at random, and the lattice constant is the share-weighted mean of the
    two metals' (Vegard's law). ``info["metal"]`` stays the host metal, so the OOD splits
    count an alloy as its host's catalyst.

    Args:
        index: System number.
        seed: Data-set seed.
        adsorbates: Pool to draw from.
        alloy_fraction: Probability that the slab is a binary alloy, in [0, 1].
        placer: Places the adsorbate instead of :func:`place_adsorbate` (it gets a generator
            seeded for this system).
    """
    rng = _system_rng(seed, index)
    metal, facet, size, layers, adsorbate = _draw_choices(rng, adsorbates)
    site = SITES[facet][rng.integers(len(SITES[facet]))]
    size = 3 if len(adsorbate.symbols) > 3 else size
    alloy = _draw_alloy(seed, index, metal, alloy_fraction)
    if alloy is None:
        slab = build_slab(metal, facet, size, layers)
    else:
        slab = _alloy_slab(metal, *alloy, facet, size, layers, _system_rng(seed, index, 3))
    if placer is None:
        atoms = place_adsorbate(slab, adsorbate, site, rng, height=rng.uniform(1.8, 2.2))
    else:
        atoms = placer(slab, adsorbate, _system_rng(seed, index, 4))
        site = str(atoms.info.get("site", "random"))
        atoms.info = {}
    atoms.info.update(
        system_id=int(index),
        metal=metal,
        facet=f"fcc{facet}",
        adsorbate=adsorbate.name,
        site=site,
    )
    if alloy is not None:
        atoms.info.update(alloy=alloy[0], alloy_fraction=float(alloy[1]))
    return atoms


def _draw_alloy(
    seed: int, index: int, host: str, alloy_fraction: float
) -> tuple[str, float] | None:
    """``(second metal, its share)`` when system ``index`` is an alloy, else ``None``."""
    if alloy_fraction <= 0.0:
        return None
    rng = _system_rng(seed, index, 2)
    if rng.random() >= alloy_fraction:
        return None
    others = [m for m in METALS if m != host]
    return others[rng.integers(len(others))], float(ALLOY_SHARES[rng.integers(len(ALLOY_SHARES))])


def _alloy_slab(
    host: str,
    guest: str,
    share: float,
    facet: str,
    size: int,
    layers: int,
    rng: np.random.Generator,
) -> Atoms:
    """A host slab at the Vegard lattice constant with ``share`` of its sites given to guest."""
    from ase.data import atomic_numbers, reference_states

    a = [reference_states[atomic_numbers[m]]["a"] for m in (host, guest)]
    slab = build_slab(host, facet, size, layers, (1.0 - share) * a[0] + share * a[1])
    symbols = slab.get_chemical_symbols()
    for i in rng.choice(len(slab), max(1, round(share * len(slab))), replace=False):
        symbols[int(i)] = guest
    slab.set_chemical_symbols(symbols)
    return slab


def _draw_choices(
    rng: np.random.Generator, adsorbates: Sequence[Adsorbate]
) -> tuple[str, str, int, int, Adsorbate]:
    """Metal, facet, surface size, layers and adsorbate: the first draws of a system."""
    metal = METALS[rng.integers(len(METALS))]
    facet = ("111", "100")[rng.integers(2)]
    size = int(rng.integers(2, 4))
    layers = int(rng.integers(3, 5))
    return metal, facet, size, layers, adsorbates[rng.integers(len(adsorbates))]


def sample_info(index: int, seed: int, adsorbates: Sequence[Adsorbate]) -> dict[str, str]:
    """``metal``, ``facet`` and ``adsorbate`` of system ``index``, without building it."""
    metal, facet, _, _, adsorbate = _draw_choices(_system_rng(seed, index), adsorbates)
    return {"metal": metal, "facet": f"fcc{facet}", "adsorbate": adsorbate.name}


def _system_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), int(stream)])


def label(atoms: Atoms, oracle: Calculator) -> Atoms:
    """A copy of ``atoms`` holding the oracle's energy (eV) and forces (eV/Å, all atoms).

    Forces are taken without applying constraints, as a DFT code reports them. When
    ``atoms.calc is oracle`` the oracle's cached results are reused.
    """
    if atoms.calc is not oracle:
        atoms = atoms.copy()
        atoms.calc = oracle
    energy = float(atoms.get_potential_energy())
    forces = np.array(atoms.get_forces(apply_constraint=False), dtype=float)
    frame = atoms.copy()  # copies info, tags and constraints, not the calculator
    frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces)
    return frame


def _frame(atoms: Atoms, oracle: Calculator, kind: str, index: int) -> Atoms:
    frame = label(atoms, oracle)
    frame.info.update(frame_kind=kind, frame_index=int(index))
    return frame


@dataclass(frozen=True)
class Recipe:
    """How each system is turned into labelled frames.

    Attributes:
        relax_steps: BFGS step limit (the relaxation stops earlier at ``fmax``).
        keep_every: Keep relaxation frames ``0, k, 2k, ...`` and always the last one.
        rattle_frames: Copies of the relaxed structure with the free atoms displaced by
            Gaussian noise of standard deviation ``rattle_std * (j + 1) / rattle_frames`` Å.
        rattle_std: Largest rattle amplitude, Å.
        fmax: Relaxation force criterion, eV/Å (on free atoms).
        max_force: Drop frames whose largest force exceeds this, eV/Å (``None`` keeps all).
            EMT puts forces of up to ~250 eV/Å on OC20's gas-phase adsorbate geometries in
            the first relaxation frames; such frames would set the loss scale.
        alloy_fraction: Share of systems whose slab is a random binary alloy (see
            :func:`sample_system`); 0 makes only unary slabs, as OC-EMT always did.
    """

    relax_steps: int = 60
    keep_every: int = 4
    rattle_frames: int = 3
    rattle_std: float = 0.05
    fmax: float = 0.05
    max_force: float | None = 10.0
    alloy_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.keep_every < 1 or self.relax_steps < 0 or self.rattle_frames < 0:
            raise ValueError("need keep_every >= 1, relax_steps >= 0 and rattle_frames >= 0")
        if not 0.0 <= self.alloy_fraction <= 1.0:
            raise ValueError(f"alloy_fraction must be in [0, 1], got {self.alloy_fraction}")


def generate_system(
    index: int,
    seed: int,
    oracle: Calculator | None = None,
    recipe: Recipe = Recipe(),
    adsorbates: Sequence[Adsorbate] | None = None,
    placer: Placer | None = None,
) -> list[Atoms]:
    """Labelled S2EF frames of system ``index``: a relaxation trajectory plus rattled copies.

    Args:
        index: System number (its ``system_id``).
        seed: Data-set seed.
        oracle: ASE calculator giving the labels (default: a fresh ``EMT()``).
        recipe: Relaxation, frame selection, rattling and the share of alloy slabs.
        adsorbates: Pool to draw from (default: :func:`load_adsorbates`).
        placer: Adsorbate placement (default: :func:`place_adsorbate`).
    """
    if oracle is None:
        from ase.calculators.emt import EMT

        oracle = EMT()
    atoms = sample_system(
        index, seed, adsorbates or load_adsorbates(),
        alloy_fraction=recipe.alloy_fraction, placer=placer,
    )  # fmt: skip
    _check_elements(atoms, oracle)
    atoms.calc = oracle
    frames: list[Atoms] = []
    opt = BFGS(atoms, logfile=None)
    step = -1
    for step, _ in enumerate(opt.irun(fmax=recipe.fmax, steps=recipe.relax_steps)):
        if step % recipe.keep_every == 0:
            frames.append(_frame(atoms, oracle, "relax", step))
    if step % recipe.keep_every != 0:
        frames.append(_frame(atoms, oracle, "relax", step))
    rng = _system_rng(seed, index, stream=1)
    free = ~np.isin(np.arange(len(atoms)), _fixed_indices(atoms))
    relaxed = atoms.copy()
    for j in range(recipe.rattle_frames):
        rattled = relaxed.copy()
        std = recipe.rattle_std * (j + 1) / recipe.rattle_frames
        rattled.positions[free] += rng.normal(0.0, std, (len(atoms), 3))[free]
        rattled.calc = oracle
        frames.append(_frame(rattled, oracle, "rattle", j))
    if recipe.max_force is None:
        return frames
    return [
        f
        for f in frames
        if np.linalg.norm(f.calc.results["forces"], axis=1).max() <= recipe.max_force
    ]


def _fixed_indices(atoms: Atoms) -> np.ndarray:
    return np.concatenate(
        [c.get_indices() for c in atoms.constraints if isinstance(c, FixAtoms)] or [[]]
    ).astype(int)


def _check_elements(atoms: Atoms, oracle: Calculator) -> None:
    """Refuse elements EMT has no parameters for (other oracles are trusted)."""
    if type(oracle).__name__ != "EMT":
        return
    unknown = sorted(set(atoms.get_chemical_symbols()) - EMT_ELEMENTS)
    if unknown:
        raise ValueError(
            f"EMT has no parameters for {unknown}; it knows {sorted(EMT_ELEMENTS)}. Use another "
            "oracle or drop those adsorbates."
        )


def generate(
    n_systems: int,
    seed: int,
    oracle: Calculator | None = None,
    relax_steps: int = 60,
    rattle_frames: int = 3,
    *,
    keep_every: int = 4,
    rattle_std: float = 0.05,
    fmax: float = 0.05,
    max_force: float | None = 10.0,
    start: int = 0,
    progress: bool = False,
) -> list[Atoms]:
    """Labelled frames of systems ``start .. start + n_systems - 1`` (see :func:`generate_system`).

    The keyword arguments are the fields of :class:`Recipe`. Deterministic for a seed:
    system ``i`` is the same whatever ``n_systems`` and ``start``.
    """
    from tqdm.auto import tqdm

    recipe = Recipe(relax_steps, keep_every, rattle_frames, rattle_std, fmax, max_force)
    adsorbates = load_adsorbates()
    frames: list[Atoms] = []
    for index in tqdm(range(start, start + n_systems), desc="oc-emt", disable=not progress):
        frames += generate_system(index, seed, oracle, recipe, adsorbates)
    return frames


MANIFEST_VERSION = 1
# generation settings written to the manifest only when not at their default, so that data
# sets made before they existed keep resuming
_OPTIONAL_PARAMS = ("alloy_fraction", "placement")


def write_dataset(
    out_dir: str | os.PathLike,
    n_systems: int,
    seed: int,
    oracle: Calculator | None = None,
    recipe: Recipe = Recipe(),
    *,
    val_fraction: float = 0.1,
    holdout: Holdout | None = None,
    chunk_size: int = 8,
    progress: bool = True,
    placer: Placer | None = None,
    placement: str | None = None,
) -> dict[str, Path]:
    """Generate an OC-EMT data set into ``out_dir``, resumably.

    Systems are generated in chunks of ``chunk_size``, each written atomically as
    ``out_dir/chunks/NNNN.extxyz`` followed by ``NNNN.json`` listing its systems; a rerun
    reuses every chunk whose listing matches and generates the rest. Then the splits are
    written atomically, by system (see :func:`split_systems`): ``train.extxyz``, ``val.extxyz``
    (val-ID) and, when ``holdout`` holds anything out, ``val_ood_ads.extxyz``,
    ``val_ood_cat.extxyz`` and ``val_ood_both.extxyz`` (each only when it holds a frame).
    ``manifest.json`` records the parameters, the held-out adsorbates and catalysts, and the
    systems and frames of each split. A rerun with different generation parameters is
    refused (use a fresh ``out_dir``); more systems extend the set; the split settings may
    change between runs (the chunks do not depend on them). ``placer`` places the adsorbates
    (default :func:`place_adsorbate`) and ``placement`` names it in the manifest
    (``"custom"`` when a placer is given without a name).

    Returns:
        ``{"train": path, "val": path, ["val_ood_ads": ..., ...] "manifest": path}``.
    """
    if n_systems < 1:
        raise ValueError(f"n_systems must be >= 1, got {n_systems}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    out = Path(out_dir)
    params = {
        "version": MANIFEST_VERSION, "seed": int(seed), "chunk_size": chunk_size,
        "oracle": "EMT" if oracle is None else type(oracle).__name__, **asdict(recipe),
    }  # fmt: skip
    if not recipe.alloy_fraction:  # data sets made before alloys existed stay resumable
        params.pop("alloy_fraction")
    if placer is not None:
        params["placement"] = placement or "custom"
    _check_manifest(out / "manifest.json", params)
    if not (out / "manifest.json").is_file():  # before any chunk: a rerun checks settings
        _write_json(out / "manifest.json", params)
    chunks = _chunks(out / "chunks", n_systems, seed, oracle, recipe, chunk_size, progress, placer)
    frames = [f for chunk in chunks for f in chunk]
    for f in frames:
        f.info.pop("source", None)
    holdout = holdout or Holdout()
    adsorbates = load_adsorbates()
    infos = {i: sample_info(i, seed, adsorbates) for i in range(n_systems)}
    splits = split_systems(infos, seed, val_fraction, holdout)
    manifest = dict(params, n_systems=n_systems, val_fraction=val_fraction)
    paths = _write_splits(out, frames, splits, holdout, manifest)
    paths["manifest"] = _write_json(out / "manifest.json", manifest)
    return paths


def _write_splits(
    out: Path, frames: list[Atoms], splits: dict[str, list[int]], holdout: Holdout, manifest: dict
) -> dict[str, Path]:
    """Write each split's frames; fills ``manifest`` with ids and counts."""
    from equicat.data.dataset import write_frames

    names = SPLITS if holdout.adsorbates or holdout.catalysts else ("train", "val_id")
    split_of = {i: name for name, ids in splits.items() for i in ids}
    paths: dict[str, Path] = {}
    for name in SPLITS:
        part = [f for f in frames if split_of[int(f.info["system_id"])] == name]
        key = "val" if name == "val_id" else name
        if name in names:
            manifest[f"{key}_systems"] = splits[name]
            manifest[f"{key}_frames"] = len(part)
        if name in ("train", "val_id") or (name in names and part):
            paths[key] = write_frames(out / SPLIT_FILES[name], part)
        else:  # no such split (or an empty one): drop the file of an earlier run
            (out / SPLIT_FILES[name]).unlink(missing_ok=True)
    manifest["holdout"] = asdict(holdout)
    return paths


def _chunks(
    folder: Path,
    n_systems: int,
    seed: int,
    oracle: Calculator | None,
    recipe: Recipe,
    chunk_size: int,
    progress: bool,
    placer: Placer | None = None,
) -> list[list[Atoms]]:
    """The frames of each chunk of systems, read when complete on disk, else generated."""
    from tqdm.auto import tqdm

    from equicat.data.dataset import read_frames, write_frames

    adsorbates = load_adsorbates()
    chunks: list[list[Atoms]] = []
    bar = tqdm(total=n_systems, desc="oc-emt systems", unit="system", disable=not progress)
    for c, first in enumerate(range(0, n_systems, chunk_size)):
        ids = list(range(first, min(first + chunk_size, n_systems)))
        path = folder / f"{c:04d}.extxyz"
        done = path.with_suffix(".json")  # written last: the chunk is complete
        if path.is_file() and done.is_file() and json.loads(done.read_text())["systems"] == ids:
            chunks.append(read_frames(path))
            bar.update(len(ids))
            continue
        frames = []
        for index in ids:
            frames += generate_system(index, seed, oracle, recipe, adsorbates, placer)
            bar.update(1)
        write_frames(path, frames)
        _write_json(done, {"systems": ids, "frames": len(frames)})
        chunks.append(frames)
    bar.close()
    return chunks


def _check_manifest(path: Path, params: dict) -> None:
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    # optional settings are recorded only when not the default, so check them both ways
    keys = set(params) | (set(_OPTIONAL_PARAMS) & set(old))
    diff = sorted(k for k in keys if old.get(k) != params.get(k))
    if diff:
        changes = ", ".join(f"{k}: {old.get(k)!r} -> {params.get(k)!r}" for k in diff)
        hint = ""
        if "placement" in diff and old.get("placement") is None:
            hint = (
                " (data sets made before AdsorbML placement became the default need "
                "--placement simple)"
            )
        raise ValueError(
            f"{path.parent} holds an OC-EMT data set made with other settings ({changes}); "
            f"use a fresh --out directory or the original settings{hint}."
        )


def _write_json(path: Path, data: dict) -> Path:
    from equicat.data.dataset import atomic_open

    with atomic_open(path) as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    return path
