"""``coord demo``: a simulated team of agent processes on a throw-away workspace.

On a terminal the live dashboard shows the run; otherwise (or with ``--no-dashboard``) one line
per notable change is printed. It ends with a summary; ``--json`` prints only the summary object
(``ok``, ``problems``, ``elapsed``, ``agents``, ``tasks``, ``failure``, ``killed``,
``reclaimed``, ``claims``, ``double_claims``, ``timer``, ``pids``, ``leftover_pids``,
``workspace``, ``kept``). Exit 0 when the run showed everything it should; 1 when a check failed
(see ``problems``); 2 for bad flags; 130 when interrupted.
"""

from __future__ import annotations

from .base import dispatch, integer, real, seconds

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from ..api import Coordinator
    from ..demo.team import Demo
    from .base import Context, Parser
    from .main import Globals


def run(command: str, argv: Sequence[str], g: Globals) -> int:
    return dispatch(
        "demo",
        argv,
        g,
        _build,
        "Run a simulated team of agents on a throw-away workspace: claims, progress, a failure,\n"
        "an agent killed mid-task whose task is reclaimed, a timer; shown live.",
    )


def _build(parser: Parser) -> None:
    parser.add_argument(
        "--agents", type=integer("--agents"), default=4, help="agent processes (2-8, default 4)"
    )
    parser.add_argument(
        "--tasks", type=integer("--tasks"), default=10, help="tasks (4-40, default 10)"
    )
    parser.add_argument(
        "--speed", type=real("--speed"), default=1.0, help="time factor (default 1: about a minute)"
    )
    parser.add_argument("--keep", metavar="DIR", help="run in DIR (new or empty) and keep it")
    parser.add_argument(
        "--timeout",
        type=seconds("--timeout", positive=True),
        help="give up after this many seconds",
    )
    parser.add_argument(
        "--no-dashboard", action="store_true", help="print progress lines even on a terminal"
    )
    parser.set_defaults(handler=_demo)


def summarize(demo: Demo, leftover: list[int], stopped_early: str | None) -> dict[str, Any]:
    """The summary (``coord demo --json``), checked against what the run must show: every task
    complete but the failure (failed) and its dependents (blocked), the killed agent's task
    reclaimed and completed by another agent, no double claim, no process left running."""
    import os

    from ..core.models import BLOCKED, COMPLETE, FAILED
    from ..demo.agent import double_claims, read_journal
    from ..demo.team import FAIL_TASK, OPEN, plan

    assert demo.coord is not None
    tasks = {t.id: t for t in demo.coord.tasks.list()}
    journal = read_journal(os.path.join(demo.project, "demo-logs"))
    double = double_claims(journal, tasks)
    blocked = _dependents(FAIL_TASK, plan(demo.n_tasks))
    want = {i: FAILED if i == FAIL_TASK else BLOCKED if i in blocked else COMPLETE for i in tasks}
    problems = [f"{i} is {t.status}, not {want[i]}" for i, t in sorted(tasks.items())
                if t.status != want[i] and not stopped_early]  # fmt: skip
    reclaimed = None
    if demo.killed is None:
        if not stopped_early:
            problems.append(f"{demo.victim} was never caught mid-task, so nobody was killed")
    else:
        t = tasks[demo.killed["task"]]
        reclaimed = {"task": t.id, "from": demo.victim, "by": t.agent, "status": t.status,
                     "epoch": t.epoch, "attempts": t.attempts}  # fmt: skip
        if not stopped_early and (t.status != COMPLETE or t.agent == demo.victim or t.attempts < 1):
            problems.append(f"the killed agent's task {t.id} was not finished by another agent")
    problems += [f"{double} double claim(s)"] if double else []
    problems += [f"processes still running: {leftover}"] if leftover else []
    problems += [f"stopped early ({stopped_early})"] if stopped_early else []
    agents = []
    for name, proc in demo.procs.items():
        mine = [r["event"] for r in journal if r.get("agent") == name]
        role = {demo.failer: "fails a task", demo.victim: "killed mid-task"}.get(name, "")
        agents.append({"name": name, "pid": proc.pid, "exit": proc.returncode, "role": role,
                       "claims": mine.count("claim"),
                       "completed": mine.count("complete")})  # fmt: skip
    states = [t.status for t in tasks.values()]
    failed = tasks.get(FAIL_TASK)
    timer = _timer(demo.coord)
    return {
        "ok": not problems, "problems": problems, "stopped_early": stopped_early,
        "elapsed": round(demo.elapsed(), 1), "speed": demo.speed,
        "finished_after": demo.finished_at and round(demo.finished_at, 1),
        "agents": agents,
        "tasks": {"total": len(tasks), "complete": states.count(COMPLETE),
                  "failed": sorted(i for i, t in tasks.items() if t.status == FAILED),
                  "blocked": sorted(i for i, t in tasks.items() if t.status == BLOCKED),
                  "open": sorted(i for i, t in tasks.items() if t.status in OPEN)},
        "failure": failed and {"task": failed.id, "agent": failed.agent,
                               "status": failed.status, "error": failed.error},
        "killed": demo.killed, "reclaimed": reclaimed,
        "claims": sum(r["event"] == "claim" for r in journal), "double_claims": double,
        "timer": {"pid": demo.timer_pid, "checkpoints": timer.get("count"),
                  "stopped": demo.timer_stopped},
        "pids": demo.pids(), "leftover_pids": leftover,
        "workspace": demo.root, "kept": bool(demo.keep),
    }  # fmt: skip


def _dependents(root: str, tasks: list[tuple[str, str, tuple[str, ...], int, int]]) -> set[str]:
    out: set[str] = set()
    frontier = {root}
    while frontier:
        frontier = {t[0] for t in tasks if set(t[2]) & frontier} - out
        out |= frontier
    return out


def _timer(coord: Coordinator) -> dict[str, Any]:
    from ..dashboard.app import timer_status

    found = timer_status(coord, coord.now())
    return found[0] if found else {}


def summary_text(s: dict[str, Any]) -> str:
    t = s["tasks"]
    head = "demo finished" if s["ok"] else "demo finished with problems"
    if s["stopped_early"]:
        head = f"demo stopped early ({s['stopped_early']})"
    out = [f"{head} in {s['elapsed']:.1f}s (speed {s['speed']:g}x)"]
    parts = [f"{t['complete']}/{t['total']} complete"]
    fail = s.get("failure")
    if fail and fail["status"] == "failed":
        parts.append(f"{fail['task']} failed by {fail['agent']} ({fail['error']})")
    if t["blocked"]:
        parts.append(f"blocked: {', '.join(t['blocked'])}")
    out.append("  tasks:      " + "; ".join(parts))
    k, r = s.get("killed"), s.get("reclaimed")
    if k:
        out.append(
            f"  killed:     {k['agent']} (pid {k['pid']}) on {k['task']} at {k['percent']}%, "
            f"{k['at']:.1f}s in"
        )
    if r:
        out.append(
            f"  reclaimed:  {r['task']} after the lease expired; finished by {r['by']} "
            f"(epoch {r['epoch']}, {r['status']})"
        )
    out.append(f"  claims:     {s['claims']}, double claims: {s['double_claims']}")
    timer = s["timer"]
    out.append(
        f"  timer:      {timer['checkpoints']} checkpoints, "
        + ("stopped" if timer["stopped"] else "not stopped")
    )
    left = s["leftover_pids"]
    out.append(
        f"  processes:  {len(s['pids'])} started, "
        + (f"still running: {left}" if left else "all stopped")
    )
    where = s["workspace"]
    out.append(
        f"  workspace:  {where} (kept: coord --dir {where} dashboard)"
        if s["kept"]
        else f"  workspace:  {where} (removed; --keep DIR keeps it)"
    )
    out.extend(f"  problem:    {p}" for p in s["problems"])
    return "\n".join(out)


def _demo(ctx: Context, ns: argparse.Namespace) -> int:
    import sys

    from ..demo.team import Demo, run_demo

    live = sys.stdout.isatty() and not ctx.json and not ns.no_dashboard

    def say(text: str) -> None:
        from ..core.text import scrub

        print(scrub(text), flush=True)

    quiet = ctx.json or ctx.quiet
    demo = Demo(
        agents=ns.agents,
        tasks=ns.tasks,
        speed=ns.speed,
        keep=ns.keep,
        timeout=ns.timeout,
        say=None if live or quiet else say,
    )
    result = run_demo(demo, summarize, live=live)
    ctx.emit(result, lambda: summary_text(result))
    if result["stopped_early"] == "interrupted":
        return 130
    return 0 if result["ok"] or result["stopped_early"] == "quit" else 1
