"""AdsorbML on OC-EMT-Dense: success rate and speedup at k = 1..5, seconds per ML relaxation.

A thin wrapper of ``equicat adsorbml-benchmark`` (library code: :mod:`equicat.adsorbml.benchmark`
and :mod:`equicat.adsorbml.metrics`). Run from the repository root::

    python benchmarks/adsorbml.py --systems 20 --random 4 --fmax 0.05 --steps 200 \\
        --out runs/bench_adsorbml

Prints the table in the format of the EquiformerV2 paper's Table 3 and writes
``OUT/results.json`` (the table, every system's ground truth, top-k energies and anomaly
counts). Everything is cached under ``OUT``; a rerun resumes, and a rerun with a larger
``--systems`` adds systems to the same set.
"""

from __future__ import annotations

import sys

from equicat.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["adsorbml-benchmark", *sys.argv[1:]]))
