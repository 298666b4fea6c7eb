from __future__ import annotations

import pytest

from equicat.adsorbml.metrics import SystemOutcome, format_table, speedup, success_rate, table

# three systems, energies in eV; oracle minima 0.0
SYSTEMS = [
    # top-1 already within 0.1 eV
    SystemOutcome(oracle_min=0.0, oracle_steps=1000, ranked_single_points=(0.05, 0.5, 0.6)),
    # only the third-ranked is good (and below the dense minimum: still a success)
    SystemOutcome(
        oracle_min=0.0, oracle_steps=500, ranked_single_points=(0.3, 0.2, -0.1, 0.4, 0.5, 0.0)
    ),
    # no valid ML structure at all: always a failure, costs no single point
    SystemOutcome(oracle_min=0.0, oracle_steps=300, ranked_single_points=()),
]


@pytest.mark.parametrize("k,rate", [(1, 1 / 3), (2, 1 / 3), (3, 2 / 3), (5, 2 / 3)])
def test_success_rate(k, rate):
    assert success_rate(SYSTEMS, k) == pytest.approx(rate)


@pytest.mark.parametrize("k,spent", [(1, 2), (2, 4), (3, 6), (4, 7), (5, 8)])
def test_speedup(k, spent):
    # system 1 has 3 ranked structures, so it spends at most 3 single points
    assert speedup(SYSTEMS, k) == pytest.approx(1800 / spent)


def test_margin_is_inclusive_and_strict_above():
    s = [SystemOutcome(1.0, 10, (1.1,))]
    assert success_rate(s, 1) == 1.0
    assert success_rate([SystemOutcome(1.0, 10, (1.1001,))], 1) == 0.0


def test_table_format():
    result = table(SYSTEMS, seconds_per_relaxation=2.5)
    assert result["k"]["1"]["success_rate"] == pytest.approx(1 / 3)
    text = format_table(result, "m")
    assert "k=5 success" in text and "33.3%" in text and "| 2.50 |" in text
    assert len({line.count("|") for line in text.splitlines()}) == 1
