"""Run by test_cli in a subprocess: ``equicat relax`` that SIGKILLs itself right after its
first atomic write of OUT (one batch of structures finished, the rest still relaxing)."""

from __future__ import annotations

import os
import signal
import sys

import equicat.cli.relax as cli_relax
from equicat.cli.main import main

_real_write = cli_relax._write


def _write_then_die(*args, **kwargs) -> None:
    _real_write(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    cli_relax._write = _write_then_die
    main(sys.argv[1:])
