"""Time optimizer steps of a training config before committing to a long run.

Usage: ``python scripts/time_train_step.py CONFIG.yaml [--steps 8] [--threads 2]``

Builds the run's trainer in a temporary directory (references, scale and model config
fitted exactly as ``equicat train`` does), takes ``--steps`` optimizer steps on the real
batches and prints the median wall time and CPU time per step, the batch sizes in atoms
and edges, and the projected length of the configured run. CPU time is less disturbed by
other processes on a shared machine than wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import torch

from equicat.train import load_config
from equicat.train.trainer import Trainer


def main() -> None:
    """Parse arguments, time the steps, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(dataclasses.replace(config, out_dir=tmp), progress=False)
        walls, cpus, sizes = [], [], []
        for step in range(args.steps + 1):
            samples = [trainer.train_set[int(i)] for i in trainer.batch_indices(step)]
            batch = trainer._collate(samples)
            w, c = time.perf_counter(), time.process_time()
            trainer.train_step(batch)
            if step:  # the first step pays one-off costs
                walls.append(time.perf_counter() - w)
                cpus.append(time.process_time() - c)
                sizes.append((batch.graph.num_atoms, batch.graph.num_edges))
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    atoms = statistics.mean(s[0] for s in sizes)
    edges = statistics.mean(s[1] for s in sizes)
    params = sum(p.numel() for p in trainer.model.parameters())
    print(f"model: {trainer.model.extra_repr()}, {params} parameters")
    print(f"batch: {config.data.batch_size} structures, {atoms:.0f} atoms, {edges:.0f} edges")
    threads = torch.get_num_threads()
    print(f"step:  median wall {wall:.3f} s, median CPU {cpu:.3f} s ({threads} threads)")
    print(
        f"run:   {trainer.total_steps} steps ({trainer.steps_per_epoch} per epoch) "
        f"-> {trainer.total_steps * wall / 60:.1f} min of steps at this wall time"
    )


if __name__ == "__main__":
    main()
