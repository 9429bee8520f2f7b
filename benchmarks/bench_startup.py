"""CLI start-up: whole ``coord`` processes against ``python -c pass`` in the same venv.

SPEC section 8: ``coord task progress ...`` and ``coord --help`` within 3x of ``python -c pass``.
One command per command group that exists is timed too (groups whose module is not written yet are
skipped). Runs are interleaved round by round (baseline, then every command) so that a burst of
load on this shared machine hits baseline and commands alike.
"""

from __future__ import annotations

import importlib.util

from .common import (
    CommandFailed,
    child_env,
    compile_package,
    coord_argv,
    median,
    ms,
    percentile,
    python,
    row,
    run_measured,
    unavailable,
    workspace,
)
from .profiling import add_profile, cprofile_text, importtime_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

NAME = "startup"
TITLE = "CLI start-up (whole processes)"
TARGET_RATIO = 3.0

#: (row name, cli module that must exist, argv after ``coord --dir D``, accepted exit codes,
#:  whether SPEC section 8 sets the 3x target for it)
COMMANDS: list[tuple[str, str, list[str], tuple[int, ...], bool]] = [
    ("coord --help", "", ["--help"], (0,), True),
    (
        "coord task progress",
        "cmd_task",
        ["task", "progress", "t1", "--agent", "bench", "--percent", "5"],
        (0,),
        True,
    ),
    ("coord task list", "cmd_task", ["task", "list"], (0,), False),
    ("coord task show", "cmd_task", ["task", "show", "t1"], (0,), False),
    ("coord agent list", "cmd_agent", ["agent", "list"], (0,), False),
    ("coord status", "cmd_status", ["status"], (0, 1), False),
    ("coord event tail -n 1", "cmd_event", ["event", "tail", "bench", "-n", "1"], (0,), False),
    ("coord context list", "cmd_context", ["context", "list"], (0,), False),
    ("coord monitor", "cmd_monitor", ["monitor"], (0, 1), False),
    ("coord stale", "cmd_maint", ["stale"], (0, 1), False),
    ("coord timer status", "cmd_timer", ["timer", "status"], (0, 1, 3), False),
]


def _has_module(module: str) -> bool:
    if not module:
        return True
    try:
        return importlib.util.find_spec(f"agentcoord.cli.{module}") is not None
    except ImportError:
        return False


def _prepare(root: str) -> None:
    """A workspace with one claimed task (``t1`` held by ``bench``) and one event on channel
    ``bench`` (``event tail`` of a channel never emitted on is exit 3), as an agent would have."""
    from agentcoord.api import Coordinator

    coord = Coordinator.open(root)
    coord.tasks.create("start-up benchmark task", id="t1", total=None)
    coord.agents.register("bench")
    coord.tasks.claim("t1", agent="bench", lease_seconds=3600)
    coord.events.emit("bench", "started", {"task": "t1"}, agent="bench")
    coord.close()


def _run_code(argv: list[str], env: dict[str, str], codes: tuple[int, ...]) -> tuple[float, float]:
    return run_measured(argv, env=env, ok=codes)


def run(
    quick: bool = False, *, rounds: int | None = None, only: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Rows for every command (or those named in ``only``); ``rounds`` overrides the run count
    (the smoke test uses 1)."""
    rounds = rounds or (7 if quick else 21)
    compile_package()
    env = child_env()
    base = [python(), "-c", "pass"]
    rows = []
    with workspace("startup") as root:
        _prepare(root)
        coord = [*coord_argv(), "--dir", root]
        active: list[tuple[str, list[str], tuple[int, ...], bool]] = []
        skipped = []
        for name, module, args, codes, targeted in COMMANDS:
            if only is not None and name not in only:
                continue
            if not _has_module(module):
                skipped.append((name, f"no module agentcoord.cli.{module} yet", targeted))
                continue
            argv = [*coord, *args]
            try:  # warm-up, and drop commands whose options do not exist (yet)
                _run_code(argv, env, codes)
            except CommandFailed as exc:
                skipped.append((name, str(exc), targeted))
                continue
            active.append((name, argv, codes, targeted))
        run_measured(base, env=env)
        samples: dict[str, list[float]] = {"base": []}
        cpu: dict[str, list[float]] = {"base": []}
        for name, *_ in active:
            samples[name], cpu[name] = [], []
        for _ in range(rounds):
            wall, used = run_measured(base, env=env)
            samples["base"].append(wall)
            cpu["base"].append(used)
            for name, argv, codes, _t in active:
                wall, used = _run_code(argv, env, codes)
                samples[name].append(wall)
                cpu[name].append(used)
        baseline = ms(median(samples["base"]))
        base_cpu = ms(median(cpu["base"]))
        rows.append(
            row(
                "python -c pass (venv)",
                baseline,
                "ms",
                note=f"median of {rounds}; CPU {base_cpu:.1f} ms",
            )
        )
        for name, argv, _codes, targeted in active:
            value = ms(median(samples[name]))
            ratio = value / baseline
            used = ms(median(cpu[name]))
            met = ratio <= TARGET_RATIO if targeted else None
            rows.append(
                row(
                    name,
                    value,
                    "ms",
                    baseline=baseline,
                    target=f"<= {TARGET_RATIO:g}x python -c pass" if targeted else "",
                    met=met,
                    note=f"median of {rounds}, p90 {ms(percentile(samples[name], 90)):.0f} ms; "
                    f"CPU {used:.1f} ms ({used / base_cpu if base_cpu else 0:.1f}x python's)",
                )
            )
            if met is False:
                _profile(name, argv, env)
        for name, why, targeted in skipped:
            target = f"<= {TARGET_RATIO:g}x python -c pass" if targeted else ""
            rows.append(unavailable(name, why, unit="ms", target=target))
    return rows


def _profile(name: str, argv: list[str], env: dict[str, str]) -> None:
    add_profile(f"{name}: python -X importtime", importtime_text(argv, env=env))
    if "--help" in argv:
        return
    from agentcoord.cli.main import main

    args = argv[len(coord_argv()) :]

    def call() -> None:
        for _ in range(20):
            main(args)

    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        text = cprofile_text(call, top=14)
    add_profile(f"{name}: cProfile of 20 calls in one process (imports excluded)", text)
