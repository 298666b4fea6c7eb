"""Run by test_trainer in a subprocess: ``python -m tests.train.crash_run STEP train CONFIG``
runs ``equicat train CONFIG`` and SIGKILLs itself right after ``train_state.pt`` is saved at
optimizer step ``STEP``."""

from __future__ import annotations

import os
import signal
import sys

import equicat.train.trainer as trainer
from equicat.cli.main import main

_real_save = trainer.save_state


if __name__ == "__main__":
    kill_at = int(sys.argv[1])

    def _save_then_die(path, state) -> None:
        _real_save(path, state)
        if state["step"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    trainer.save_state = _save_then_die
    main(sys.argv[2:])
