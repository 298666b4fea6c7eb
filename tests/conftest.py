"""Suite-wide fixtures: a table of measured errors printed at the end of the run.

Tests that bound a non-exact quantity (the sphere-grid residual of an equivariance check, the
energy jump at the cutoff) record the value they measured with ``error_table.append(...)``;
``pytest`` prints all of them in a "measured errors" section after the results, so the
numbers behind each bound are visible without ``-s``.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest


class MeasuredError(NamedTuple):
    """One row of the summary: what was measured, its value and the bound it was held to."""

    test: str
    quantity: str
    value: float
    bound: float


_TABLE = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TABLE] = []


class _Recorder:
    def __init__(self, rows: list, test: str) -> None:
        self._rows, self._test = rows, test

    def append(self, quantity: str, value: float, bound: float = float("nan")) -> None:
        self._rows.append(MeasuredError(self._test, quantity, float(value), float(bound)))


@pytest.fixture
def error_table(request: pytest.FixtureRequest) -> _Recorder:
    """Record ``(quantity, value, bound)`` for the end-of-run summary."""
    return _Recorder(request.config.stash[_TABLE], request.node.nodeid.split("::", 1)[-1])


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = config.stash.get(_TABLE, [])
    if not rows:
        return
    terminalreporter.section("measured errors: value <= bound (nan: recorded only)")
    width = max(len(r.test) for r in rows)
    qwidth = max(len(r.quantity) for r in rows)
    for r in rows:
        terminalreporter.write_line(
            f"{r.test:<{width}}  {r.quantity:<{qwidth}}  {r.value:10.3e}  <= {r.bound:9.2e}"
        )
