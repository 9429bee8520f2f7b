"""The benchmark harness runs and produces well-formed rows (no timing assertions: figures are
checked by ``make bench`` against same-run baselines, never in unit tests)."""

from __future__ import annotations

import pytest
from benchmarks import SCENARIOS, bench_startup
from benchmarks.__main__ import Section, render_markdown, run_scenario
from benchmarks.common import ROW_KEYS, percentile, row
from benchmarks.machine import machine


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("COORD_BENCH_DIR", str(tmp_path))


def test_cheapest_scenario_produces_rows_with_the_right_keys():
    rows = bench_startup.run(True, rounds=1, only=["coord --help"])
    names = [r["name"] for r in rows]
    assert names == ["python -c pass (venv)", "coord --help"]
    for r in rows:
        assert tuple(r) == ROW_KEYS
    assert rows[1]["baseline"] == rows[0]["value"]
    assert rows[1]["met"] in (True, False)
    assert rows[1]["target"]


def test_report_renders_every_row_and_the_missing_targets():
    section = Section("startup", "CLI start-up")
    section.rows = [row("coord --help", 40.0, "ms", baseline=20.0, target="<= 3x", met=True)]
    missing = run_scenario("no_such_scenario", True)
    assert missing.rows[0]["note"].startswith("not available")
    missing.name = "timer"
    text = render_markdown([section, missing], machine(), "make bench", 1.0)
    assert "| startup | coord --help | <= 3x | 40.0 ms | 20.0 | 2.00x | met |" in text
    assert "resident memory <= 40 MB" in text  # SPEC targets of a scenario that did not run
    assert "## How to reproduce" in text
    assert set(SCENARIOS) >= {"startup", "throughput", "scale", "events", "timer"}


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(range(101)), 99) == 99.0
