"""``coord prime``: what an agent needs to know at the start of a session (SPEC section 12).

:func:`gather` reads the board once for heads (twice with the ready list) and the few tasks it
names; :func:`render` turns that into a short text for the model's context, at most
``max_chars`` characters (default :data:`MAX_CHARS`, ~2 KB), dropping list items rather than
cutting a line. Agent-supplied text (titles) is escaped for one line (SPEC section 16).

``gather`` shape: ``{"agent", "registered", "status", "messages": {"unread", "ack_required"},
"counts": {state: n}, "total",
"mine": [{"id", "status", "title", "percent", "lease_left"}], "ready": [{"id", "priority",
"title"}], "ready_total", "checkin": [text], "reservations": {"mine": [{"id", "patterns",
"mode", "task", "expires_in"}], "mine_total", "others_exclusive"}}`` (``lease_left`` and
``expires_in`` in seconds or null; ``reservations`` all zero without the reservations area).
"""

from __future__ import annotations

from ..core.clock import duration
from ..core.models import ASSIGNED, IN_PROGRESS, TASK_STATES
from ..core.text import shown
from ..errors import CoordError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..domain.agents import Agents
    from ..domain.messages import Messages
    from ..domain.reservations import Reservations
    from ..domain.tasks import TaskBoard

MAX_CHARS = 2048
READY_SHOWN = 5
MINE_SHOWN = 8
#: Reservations listed, and patterns shown per reservation.
RESERVATIONS_SHOWN = 8
PATTERNS_SHOWN = 4
WORKFLOW = (
    "Workflow: 'coord task claim' takes the first ready task; 'coord task progress ID "
    "--percent N -m TEXT' reports (and renews the lease); 'coord task complete ID --result "
    "TEXT' or 'coord task fail ID --error TEXT' finishes; 'coord task release ID' gives it back."
)


def gather(
    tasks: TaskBoard,
    agents: Agents,
    agent: str,
    now: float,
    *,
    checkin: list[str] | None = None,
    ready_limit: int = READY_SHOWN,
    messages: Messages | None = None,
    reservations: Reservations | None = None,
) -> dict[str, Any]:
    """The facts :func:`render` shows for ``agent`` at time ``now`` (POSIX seconds); with
    ``messages``, the agent's unread and ack-required counts (SPEC section 14); with
    ``reservations``, its own live reservations and how many exclusive ones other agents hold
    (SPEC section 13)."""
    try:
        record = agents.get(agent)
        registered, status = True, record.status
    except NotFound:
        registered, status = False, None
    every = tasks.heads()
    counts = {state: 0 for state in TASK_STATES}
    for head in every:
        counts[head.status] = counts.get(head.status, 0) + 1
    mine_heads = [h for h in every if h.agent == agent and h.status in (IN_PROGRESS, ASSIGNED)]
    ready_heads = tasks.heads(ready=True, agent=agent)
    ready_heads = [h for h in ready_heads if h.agent != agent or h.status != IN_PROGRESS]
    loaded = {t.id: t for t in tasks.load([*mine_heads[:MINE_SHOWN], *ready_heads[:ready_limit]])}
    mine = []
    for head in mine_heads[:MINE_SHOWN]:
        task = loaded.get(head.id)
        left = head.lease_expires - now if head.lease_expires is not None else None
        mine.append(
            {
                "id": head.id,
                "status": head.status,
                "title": task.title if task is not None else "",
                "percent": task.progress_percent() if task is not None else None,
                "lease_left": round(left) if left is not None else None,
            }
        )
    ready = [
        {
            "id": h.id,
            "priority": h.priority,
            "title": loaded[h.id].title if h.id in loaded else "",
        }
        for h in ready_heads[:ready_limit]
    ]
    inbox = messages.counts(agent) if messages is not None else {"unread": 0, "ack_required": 0}
    return {
        "agent": agent,
        "registered": registered,
        "messages": inbox,
        "status": status,
        "counts": {k: v for k, v in counts.items() if v},
        "total": len(every),
        "mine": mine,
        "mine_total": len(mine_heads),
        "ready": ready,
        "ready_total": len(ready_heads),
        "checkin": list(checkin or []),
        "reservations": _reservations(reservations, agent, now),
    }


def _reservations(area: Reservations | None, agent: str, now: float) -> dict[str, Any]:
    """The ``reservations`` part of :func:`gather` (one read of the table)."""
    out: dict[str, Any] = {"mine": [], "mine_total": 0, "others_exclusive": 0}
    if area is None:
        return out
    live = area.list()
    mine = [r for r in live if r.agent == agent]
    out["mine_total"] = len(mine)
    out["others_exclusive"] = sum(1 for r in live if r.agent != agent and r.exclusive)
    out["mine"] = [
        {
            "id": r.id,
            "patterns": list(r.patterns),
            "mode": r.mode,
            "task": r.task,
            "expires_in": None if r.expires is None else round(r.expires - now),
        }
        for r in mine[:RESERVATIONS_SHOWN]
    ]
    return out


def render(data: dict[str, Any], *, max_chars: int = MAX_CHARS, source: str = "") -> str:
    """The text of :func:`gather`'s ``data``, at most ``max_chars`` characters."""
    name = shown(str(data["agent"]))
    head = [f"# agentcoord: you are agent {name}{f' ({source})' if source else ''}"]
    if not data["registered"]:
        head.append(f"Not registered yet: 'coord agent register {name}' before claiming.")
    counts = data["counts"]
    board = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items())
    head.append(f"Board: {data['total']} tasks" + (f" ({board})." if board else "."))
    inbox = data.get("messages") or {}
    if inbox.get("unread") or inbox.get("ack_required"):
        head.append(
            f"Messages: {inbox.get('unread', 0)} unread, {inbox.get('ack_required', 0)} "
            "waiting for your ack ('coord msg inbox --unread')."
        )
    held = data.get("reservations") or {}
    if held.get("others_exclusive"):
        head.append(
            f"Reserved by other agents: {held['others_exclusive']} exclusive reservation(s); "
            "edits and commits of those files are refused ('coord files list')."
        )
    tail = [WORKFLOW]
    sections: list[tuple[str, list[str], int]] = []
    mine_lines = []
    for row in data["mine"]:
        bits = [row["status"].replace("_", " ")]
        if row.get("percent") is not None:
            bits.append(f"{row['percent']:g}%")
        if row.get("lease_left") is not None:
            left = row["lease_left"]
            bits.append(f"lease {duration(left)} left" if left > 0 else "lease EXPIRED")
        mine_lines.append(f"- {shown(row['id'])} [{', '.join(bits)}] {shown(row['title'])}")
    sections.append(
        (
            f"Your tasks ({data['mine_total']}):" if data["mine_total"] else "Your tasks: none.",
            mine_lines,
            data["mine_total"],
        )
    )
    ready_lines = [
        f"- {shown(row['id'])} [p{row['priority']}] {shown(row['title'])}" for row in data["ready"]
    ]
    total = data["ready_total"]
    sections.append(
        (
            f"Ready for you ({total}; 'coord task claim' takes the first):"
            if total
            else "Ready for you: none.",
            ready_lines,
            total,
        )
    )
    if held.get("mine_total"):
        lines = [_reservation_line(row) for row in held.get("mine", [])]
        title = f"Your reservations ({held['mine_total']}; 'coord files release' gives back):"
        sections.append((title, lines, held["mine_total"]))
    if data["checkin"]:
        sections.append(("Check-in:", [f"- {shown(c)}" for c in data["checkin"]], 0))
    return _fit(head, sections, tail, max_chars)


def _reservation_line(row: dict[str, Any]) -> str:
    """``- r-1 [exclusive, 9m left] src/**, docs/*.md``: at most :data:`PATTERNS_SHOWN`
    patterns, then ``+N more``."""
    bits = [str(row["mode"])]
    left = row.get("expires_in")
    if left is not None:
        bits.append(f"{duration(left)} left" if left > 0 else "ending")
    elif row.get("task"):
        bits.append(f"with task {shown(str(row['task']))}")
    patterns = [shown(str(p)) for p in row["patterns"]]
    more = len(patterns) - PATTERNS_SHOWN
    listed = ", ".join(patterns[:PATTERNS_SHOWN]) + (f", +{more} more" if more > 0 else "")
    return f"- {shown(str(row['id']))} [{', '.join(bits)}] {listed}"


def _fit(
    head: list[str], sections: list[tuple[str, list[str], int]], tail: list[str], limit: int
) -> str:
    """Join the parts within ``limit`` characters. What goes first when space is short: the
    head and the section titles, then each section's first item, the workflow line, and the
    remaining items in order; a list that was cut says how many more there are. A text whose
    head alone is too long is cut at the limit."""
    keep = [0] * len(sections)
    with_tail = False

    def build() -> str:
        lines = list(head)
        for (title, items, total), n in zip(sections, keep, strict=True):
            lines.append(title)
            lines.extend(items[:n])
            more = max(total, len(items)) - n
            if more > 0 and items:
                lines.append(f"  ... {more} more")
        if with_tail:
            lines.extend(tail)
        return "\n".join(lines)

    text = build()
    if len(text) > limit:
        return text[: max(0, limit - 4)] + " ..."
    # Grow greedily in priority order; a step that does not fit is skipped, not the rest.
    steps: list[int | None] = [i for i, (_, items, _) in enumerate(sections) if items]
    steps.append(None)  # the workflow line
    steps += [i for i, (_, items, _) in enumerate(sections) for _ in items[1:]]
    for step in steps:
        if step is None:
            with_tail = True
        else:
            keep[step] += 1
        candidate = build()
        if len(candidate) <= limit:
            text = candidate
        elif step is None:
            with_tail = False
        else:
            keep[step] -= 1
    return text


def checkin_lines(statuses: list[dict[str, Any]]) -> list[str]:
    """One line per timer of ``timer status`` (:func:`agentcoord.timer.control.status_all`)."""
    lines = []
    for s in statuses:
        try:
            if s.get("running"):
                nxt = s.get("next_in")
                when = f", next in {duration(nxt)}" if isinstance(nxt, (int, float)) else ""
                lines.append(
                    f"timer {s.get('name')}: running, check-in #{s.get('count', 0)}{when}; "
                    "'coord timer check' shows what is new"
                )
            else:
                lines.append(f"timer {s.get('name')}: not running")
        except (CoordError, TypeError, ValueError):
            continue
    return lines
