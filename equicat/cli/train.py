"""``equicat train``: train (or resume) a model from a YAML config."""

from __future__ import annotations

import argparse
import dataclasses
import os

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the sub-command."""
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config",
        description="Train a model described by a YAML config (see equicat.train.config). "
        "Rerunning with the same out_dir resumes from its train_state.pt. For data-parallel "
        "training start it with torchrun: torchrun --nproc_per_node K -m equicat.cli.main "
        "train CONFIG.yaml (data.batch_size is the global batch, split across the K ranks).",
    )
    p.add_argument("config", nargs="?", default=None, help="YAML training config")
    p.add_argument(
        "--plot", metavar="RUN_DIR", default=None,
        help="do not train: plot RUN_DIR/log.csv as RUN_DIR/learning_curve.png and exit",
    )  # fmt: skip
    p.add_argument("--out", default=None, help="output directory (overrides out_dir)")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (overrides device)")
    p.add_argument("--max-steps", type=int, default=None, help="overrides optim.max_steps")
    p.add_argument(
        "--stop-at-step", type=int, default=None,
        help="stop after this step, resumable (the schedule is unchanged)",
    )  # fmt: skip
    p.add_argument("--log-every", type=int, default=None, help="overrides log_every")
    p.add_argument(
        "--amp", default=None, choices=["bf16", "fp16", "none"],
        help="mixed precision of the training forward pass (overrides amp; fp16 needs CUDA)",
    )  # fmt: skip
    p.add_argument("--tensorboard", action="store_true", help="also log to OUT/tensorboard")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Execute ``equicat train``."""
    from equicat.train import load_config, train

    if args.plot is not None:
        from equicat.train.plots import learning_curve

        print(f"learning curve: {learning_curve(args.plot)}")
        return 0
    if args.config is None:
        raise ValueError("equicat train needs a CONFIG.yaml (or --plot RUN_DIR)")
    config = load_config(args.config)
    changes = {}
    if args.out is not None:
        changes["out_dir"] = args.out
    if args.device is not None:
        changes["device"] = args.device
    if args.log_every is not None:
        changes["log_every"] = args.log_every
    if args.amp is not None:
        changes["amp"] = None if args.amp == "none" else args.amp
    if args.tensorboard:
        changes["tensorboard"] = True
    if args.max_steps is not None:
        changes["optim"] = dataclasses.replace(config.optim, max_steps=args.max_steps)
    config = dataclasses.replace(config, **changes)
    try:
        best = train(config, stop_at_step=args.stop_at_step, progress=not args.no_progress)
    except ImportError as err:  # an optional package the config asks for (tensorboard)
        raise ValueError(str(err)) from err
    if os.environ.get("RANK", "0") == "0":  # one line from a torchrun job, not one per rank
        print(f"best checkpoint: {best}")
    return 0
