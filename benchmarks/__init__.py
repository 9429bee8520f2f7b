"""agentcoord's benchmarks: ``python -m benchmarks [--quick] [--only NAME]`` (``make bench``).

Each scenario module ``bench_<name>.py`` exposes ``run(quick: bool) -> list[dict]`` returning
result rows (:func:`benchmarks.common.row`); every figure is set against a baseline timed in
the same run. The report is written to ``docs/benchmarks.md``.
"""

from __future__ import annotations

#: Scenario modules in run order (``benchmarks.bench_<name>``).
SCENARIOS = ("startup", "throughput", "scale", "events", "archive", "timer")
