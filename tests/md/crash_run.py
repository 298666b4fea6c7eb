"""Run by test_trajectory in a subprocess: Langevin MD into an HDF5 file, then SIGKILL itself."""

from __future__ import annotations

import os
import signal
import sys

from ase.calculators.emt import EMT

from equicat.calculators.potential import AsePotential
from equicat.md import MDConfig, step
from equicat.md.hdf5 import H5Writer
from equicat.md.runner import init_from_atoms
from tests.md.systems import emt_slab

CONFIG = MDConfig(ensemble="nvt-langevin", temperature=500.0, friction=0.02, timestep=2.0, seed=5)


def main(path: str, kill_at: int) -> None:
    pot = AsePotential(EMT())
    state = init_from_atoms([emt_slab(0), emt_slab(1, fixed=False)], pot, CONFIG)
    writer = H5Writer.create(path, state, {"test": True})
    writer.append(state)
    for n in range(1, kill_at + 1):
        state = step(state, pot)
        if n % 5 == 0:
            writer.append(state)
        if n % 10 == 0:
            writer.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no final flush


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
