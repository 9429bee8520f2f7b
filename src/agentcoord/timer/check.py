"""``coord timer check``: the seed's ``check-coordination-trigger.py``, with its blind spot fixed.

Semantics (seed 004): read the checkpoint count and the last processed count; when the
checkpoint is new, update the last-check file and print the banner (exit 1); otherwise print
nothing (exit 0). Fixes:

- A restarted timer counts from 0 again, so the seed's "current > last" stayed silent until the
  new run passed the old count (its Troubleshooting section: "Check Script Not Detecting New
  Checkpoints"). Each run has an id (in the sidecar); the last-check side file records which run
  its count belongs to, and a different run means "new".
- Two coordinators checking at once could both fire on one checkpoint: the read-compare-update
  runs under a ``flock``. Separate consumers (``--consumer``) keep separate last-check files.
- The fast path (nothing new) reads three small files and never opens the store, so hooks that
  run on every tool call stay cheap.
"""

from __future__ import annotations

import time

from ..core.clock import iso
from ..errors import CorruptData, NotFound
from .files import TimerFiles, read_checkpoint, read_count, read_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..api import Coordinator
    from .files import Checkpoint

RULE = "=" * 60
ACTIONS = (
    "Check agent status: coord monitor",
    "Review work logs: coord status; coord task show ID",
    "Check git activity: git log -5 --oneline",
    "Identify any blocked/stuck agents",
    "Intervene if needed",
    "Report status",
)


def _short_message(cp: Checkpoint) -> str:
    """The seed's banner shows the message without the trailing `` at TIMESTAMP``."""
    suffix = f" at {cp.timestamp}"
    if cp.timestamp and cp.message.endswith(suffix):
        return cp.message[: -len(suffix)]
    return cp.message


def banner(cp: Checkpoint, name: str = "default") -> str:
    """The seed's alert, with the action list adapted to ``coord`` commands."""
    lines = [RULE, "🚨 COORDINATION CHECK-IN REQUIRED", RULE]
    lines += [f"Checkpoint: {cp.count}", f"Timestamp: {cp.timestamp}"]
    lines.append(f"Message: {_short_message(cp)}")
    if name != "default":
        lines.append(f"Timer: {name}")
    lines += ["", RULE, "ACTION REQUIRED:"]
    lines += [f"{i}. {text}" for i, text in enumerate(ACTIONS, 1)]
    lines.append(RULE)
    return "\n".join(lines)


def _sidecar(files: TimerFiles) -> dict[str, Any]:
    try:
        return read_json(files.sidecar) or {}
    except CorruptData:
        return {}  # the seed's file is the truth about the count; the sidecar is extra


def _last(path: str) -> tuple[int | None, dict[str, Any]]:
    count = read_count(path)
    try:
        meta = read_json(path + ".json") or {}
    except CorruptData:
        meta = {}
    if meta.get("count") != count:
        meta = {}  # the count was reset by hand (``echo 0 > ...``): its run id no longer applies
    return count, meta


def _is_new(cp: Checkpoint, run: str | None, last: int | None, meta: dict[str, Any]) -> bool:
    if cp.count <= 0:
        return False  # checkpoint 0 is the file written at start, not a tick
    if last is None:
        return True
    last_run = meta.get("run")
    if run and last_run and run != last_run:
        return True  # a new run of the timer, whatever its count
    return cp.count != last


class CheckResult:
    __slots__ = ("checkpoint", "files", "missed", "new", "previous", "run", "side", "since")

    def __init__(self, files: TimerFiles, checkpoint: Checkpoint | None) -> None:
        self.files = files
        self.checkpoint = checkpoint
        self.new = False
        self.previous: int | None = None
        self.missed = 0
        self.run: str | None = None
        self.since: float | None = None
        self.side: dict[str, Any] = {}


def check(files: TimerFiles, *, consumer: str | None = None) -> CheckResult:
    """Compare checkpoint and last-check; on a new checkpoint, record it (atomically, once)."""
    path = files.last_check(consumer)
    cp = read_checkpoint(files.checkpoint)
    result = CheckResult(files, cp)
    if cp is None:
        if not files.exists():
            raise NotFound(
                f"no timer named {files.name} in {files.directory}; "
                "start one with 'coord timer start'",
                name=files.name,
            )
        return result
    side = _sidecar(files)
    run = side.get("run") if isinstance(side.get("run"), str) else None
    last, meta = _last(path)
    if not _is_new(cp, run, last, meta):
        result.previous = last
        return result
    from ..fs import FileLock, atomic_write
    from .files import write_json

    with FileLock(path + ".lock", timeout=5.0):
        cp = read_checkpoint(files.checkpoint)  # re-read under the lock: one winner per tick
        assert cp is not None
        side = _sidecar(files)
        run = side.get("run") if isinstance(side.get("run"), str) else None
        last, meta = _last(path)
        result.checkpoint, result.side, result.run, result.previous = cp, side, run, last
        if not _is_new(cp, run, last, meta):
            return result
        now = time.time()
        same_run = bool(run) and meta.get("run") == run
        if same_run and last is not None and cp.count > last:
            result.missed = cp.count - last - 1
        prior = meta.get("time")
        started = side.get("started_epoch")
        result.since = float(prior) if isinstance(prior, (int, float)) else None
        if result.since is None and isinstance(started, (int, float)):
            result.since = float(started)
        atomic_write(path, f"{cp.count}\n", durable=False)
        write_json(
            path + ".json",
            {"count": cp.count, "run": run, "time": now, "checked": iso(now)},
            durable=False,
        )
        result.new = True
    return result


def timer_line(side: dict[str, Any]) -> str:
    state = side.get("state") or "unknown"
    name = side.get("name", "default")
    if state == "running":
        nxt = side.get("next_tick")
        return f"Timer: {name} running, every {side.get('interval', '?')}s, next {nxt or '-'}"
    reason = side.get("stop_reason")
    return f"Timer: {name} {state}" + (f" ({reason})" if reason else "")


def summarize(
    result: CheckResult,
    coord: Coordinator | None,
    error: str | None = None,
    *,
    agent: str | None = None,
) -> dict[str, Any]:
    """The bounded summary after the banner: workspace health since the last check (``coord``
    None: the store could not be opened, ``error`` says why); with ``agent``, also its
    messages: ``"messages": {"agent", "unread", "ack_required"}`` (SPEC section 14)."""
    data: dict[str, Any]
    if coord is None:
        data = {"since": iso(result.since) if result.since else None}
        data["errors"] = [f"cannot read the workspace: {error or 'unavailable'}"]
    else:
        try:
            data = coord.reports.check_in(since=result.since)
        except Exception as exc:  # the check fired; a read problem must not hide the banner
            data = {"since": iso(result.since) if result.since else None}
            data["errors"] = [f"{type(exc).__name__}: {exc}"]
    if coord is not None and agent is not None:
        try:
            data["messages"] = {"agent": agent, **coord.messages.counts(agent)}
        except Exception:  # an unknown agent, an unreadable mailbox: the check-in goes on
            pass
    data["missed"] = result.missed
    data["timer"] = {
        k: result.side.get(k)
        for k in ("name", "state", "stop_reason", "interval", "next_tick", "reaped")
    }
    return data


def report_text(result: CheckResult, summary: dict[str, Any]) -> str:
    assert result.checkpoint is not None
    lines = [banner(result.checkpoint, result.files.name), ""]
    if result.missed:
        lines.append(f"({result.missed} earlier checkpoint(s) passed since your last check)")
    lines += summary_lines(summary)
    if result.side:
        lines.append(timer_line(result.side))
    return "\n".join(lines)


def report_json(result: CheckResult, summary: dict[str, Any] | None) -> dict[str, Any]:
    cp = result.checkpoint
    out: dict[str, Any] = {
        "new": result.new,
        "name": result.files.name,
        "checkpoint": cp.count if cp is not None else None,
        "previous": result.previous,
    }
    if result.new and cp is not None:
        out.update(
            timestamp=cp.timestamp,
            message=_short_message(cp),
            missed=result.missed,
            actions=list(ACTIONS),
            summary=summary,
        )
    return out


def _more(items: list[str], total: int, shown: int = 5) -> str:
    text = ", ".join(items[:shown])
    return text + (f" (+{total - shown} more)" if total > shown else "")


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The bounded plain-text summary printed under the seed's banner."""
    since = data.get("since")
    lines = [f"SUMMARY (since {since}):" if since else "SUMMARY:"]
    agents = data.get("agents")
    if agents is None:
        lines.append("Agents: unknown")
    elif not agents["total"]:
        lines.append("Agents: none registered")
    else:
        parts = [f"{c} {n}" for c, n in agents["by_class"].items()]
        lines.append(f"Agents: {agents['total']} ({', '.join(parts)})")
        stuck = [f"{a['agent']} ({a['class']})" for a in agents["attention"]]
        if stuck:
            lines.append("Needs attention: " + _more(stuck, len(stuck)))
        else:
            lines.append("Stuck agents: none")
        idle = agents.get("idle") or []
        if idle:  # free hands: no work held (SPEC section 4), never an alert
            total = agents["by_class"].get("Idle", len(idle))
            lines.append("Idle (no work): " + _more([str(a) for a in idle], total))
    reclaimed = data.get("reclaimed") or {"count": 0, "tasks": []}
    if reclaimed["count"]:
        items = [f"{t['id']} from {t['holder']} -> {t['status']}" for t in reclaimed["tasks"]]
        lines.append(f"Tasks reclaimed: {reclaimed['count']} ({_more(items, reclaimed['count'])})")
    else:
        lines.append("Tasks reclaimed: none")
    inbox = data.get("messages")
    if inbox and (inbox.get("unread") or inbox.get("ack_required")):
        lines.append(
            f"Messages for {inbox['agent']}: {inbox['unread']} unread, "
            f"{inbox['ack_required']} waiting for an ack (coord msg inbox --unread)"
        )
    tasks = data.get("tasks") or {}
    by_status = tasks.get("by_status") or {}
    if by_status:
        lines.append("Tasks: " + ", ".join(f"{n} {s}" for s, n in by_status.items()))
    commits = data.get("commits") or {"count": 0, "recent": []}
    if commits["count"]:
        items = [f"{c['sha'][:7]} {c['subject'][:60]}" for c in commits["recent"]]
        lines.append(f"Git commits: {commits['count']} ({_more(items, commits['count'], 3)})")
    else:
        lines.append("Git commits: none")
    for err in (data.get("errors") or [])[:3]:
        lines.append(f"Warning: {err}")
    return lines
