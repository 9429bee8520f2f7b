"""The rich data behind a checkpoint and a check-in: agents by monitor class, the agents that need
attention, open tasks, tasks whose lease expired (reclaimed or failed) and git commits, each
since a given time. Shared by the daemon (per tick, into the sidecar) and ``timer check``.

Every part is best effort: an unreadable record, a missing git binary or a store hiccup is
recorded under ``errors`` and never stops a tick or a check-in. Lists are bounded (:data:`LIMIT`)
because the result ends up in an agent's context.
"""

from __future__ import annotations

from ..clock import iso

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..api import Coordinator
    from ..models import Task

CLASSES = ("Normal", "Acceptable", "Concerning", "Stuck", "Blocked")
#: Classes that make ``--adaptive`` snap back to the base interval.
TROUBLE = frozenset({"Concerning", "Stuck", "Blocked"})
#: Classes listed as "stuck agents" in a check-in.
STUCK = frozenset({"Stuck", "Blocked"})
OPEN = ("pending", "assigned", "in_progress")
#: At most this many entries in any list of the result.
LIMIT = 20


def reclaimed_since(tasks: list[Task], since: float | None) -> list[dict[str, Any]]:
    """Tasks whose lease expired after ``since`` (by anyone: a tick, a claim, ``coord reap``),
    newest first. The task log is the record: ``lease of AGENT expired; ...``."""
    out: list[dict[str, Any]] = []
    for task in tasks:
        for line in reversed(task.logs):
            if since is not None and line.time <= since:
                break
            msg = line.message
            if msg.startswith("lease of ") and " expired" in msg:
                holder = msg[len("lease of ") :].split(" expired", 1)[0]
                out.append(
                    {
                        "id": task.id,
                        "holder": holder,
                        "status": task.status,
                        "attempts": task.attempts,
                        "time": line.time,
                    }
                )
                break
    out.sort(key=lambda r: -r["time"])
    return out


def _agents(rows: list[Any]) -> dict[str, Any]:
    by_class = {c: 0 for c in CLASSES}
    attention = []
    for row in rows:
        by_class[row.health] = by_class.get(row.health, 0) + 1
        if row.health in TROUBLE:
            attention.append(
                {
                    "agent": row.agent,
                    "class": row.health,
                    "silence": round(row.silence, 1) if row.silence is not None else None,
                    "reason": row.reason,
                }
            )
    order = {c: i for i, c in enumerate(CLASSES)}
    attention.sort(key=lambda r: (-order.get(r["class"], 0), r["agent"]))
    return {
        "total": len(rows),
        "by_class": {c: n for c, n in by_class.items() if n},
        "attention": attention[:LIMIT],
        "stuck": [r["agent"] for r in attention if r["class"] in STUCK][:LIMIT],
        "trouble": bool(attention),
    }


def _commits(commits: list[Any], since: float | None) -> dict[str, Any]:
    fresh = [c for c in commits if since is None or c.time > since]
    return {
        "since": iso(since) if since is not None else None,
        "count": len(fresh),
        "recent": [
            {"sha": c.sha[:10], "author": c.author_name, "subject": c.subject[:120]}
            for c in fresh[:5]
        ],
    }


def gather(coord: Coordinator, *, since: float | None, now: float | None = None) -> dict[str, Any]:
    """Agents, tasks, reclaimed tasks and commits, with anything new counted from ``since``."""
    when = coord.now() if now is None else now
    data: dict[str, Any] = {"time": iso(when), "since": iso(since) if since else None}
    errors: list[str] = []
    tasks: list[Task] = []
    commits: list[Any] = []
    rows: list[Any] | None = None
    fallback = False
    try:
        from ..monitor import Monitor

        monitor = Monitor(coord)
        snap = monitor.snapshot(when)
        tasks, commits = snap.tasks, snap.commits
        errors.extend(e.message for e in snap.errors[:5])
        rows = monitor.assess(snap)
    except ImportError:  # pragma: no cover - the monitor ships with the package
        errors.append("monitor unavailable")
        fallback = True
    except Exception as exc:  # a store hiccup must not stop a tick
        errors.append(f"{type(exc).__name__}: {exc}")
    if fallback:
        try:
            tasks = coord.store.list_tasks()
        except Exception as exc:
            errors.append(f"tasks: {type(exc).__name__}: {exc}")
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    data["agents"] = _agents(rows) if rows is not None else None
    data["tasks"] = {
        "total": len(tasks),
        "by_status": dict(sorted(counts.items())),
        "open": sum(counts.get(s, 0) for s in OPEN),
    }
    reclaimed = reclaimed_since(tasks, since)
    data["reclaimed"] = {"count": len(reclaimed), "tasks": reclaimed[:LIMIT]}
    for entry in data["reclaimed"]["tasks"]:
        entry["time"] = iso(entry["time"])
    data["commits"] = _commits(commits, since)
    data["errors"] = errors[:LIMIT]
    return data


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
    reclaimed = data.get("reclaimed") or {"count": 0, "tasks": []}
    if reclaimed["count"]:
        items = [f"{t['id']} from {t['holder']} -> {t['status']}" for t in reclaimed["tasks"]]
        lines.append(f"Tasks reclaimed: {reclaimed['count']} ({_more(items, reclaimed['count'])})")
    else:
        lines.append("Tasks reclaimed: none")
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
