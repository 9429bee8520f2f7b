"""The dashboard's picture: :func:`render` turns a :class:`~agentcoord.dashboard.app.Snapshot`
into a rich renderable of a given size. Pure (no I/O, time passed in), so tests render it into a
fixed-size recording console and read the text.

Layout: a header line (task counts, timer countdown), agents (with their unread messages),
tasks, file reservations (when there are any), alerts and events, and a footer (keys,
workspace, clock). Below :data:`WIDE` columns the panels are stacked and alerts share the
events panel; from :data:`WIDE` columns on, timer, reservations and alerts sit beside the agents
and tasks and events get the full width. Bars and labels are plain characters (``█░``), so the
frame reads the same without colour.

Terminal safety (SPEC section 16): every string that comes from agents or the store (names, ids,
titles, errors, reasons, metrics, event types and values, alerts, notes, the location) enters
the frame through :func:`_s` (:func:`agentcoord.core.text.shown`: control, format and separator
characters escaped, so widths are measured on what is shown), always as
:class:`rich.text.Text`, never as console markup. rich strips only a few controls itself (BEL,
BS, VT, FF, CR), not ESC, C1 or bidi controls. The only escape sequences in a frame are rich's own
styling.
"""

from __future__ import annotations

import time

from rich import box
from rich.console import Group
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..core.clock import duration
from ..core.models import ASSIGNED, BLOCKED, CANCELLED, COMPLETE, FAILED, IN_PROGRESS, PENDING
from ..core.text import shown as _s

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from rich.console import RenderableType

    from ..core.models import Event, Task
    from .app import Snapshot

WIDE = 120
MIN_WIDTH, MIN_HEIGHT = 40, 12

CLASS_STYLE = {
    "Normal": "bold green", "Acceptable": "green", "Concerning": "bold yellow",
    "Stuck": "bold dark_orange", "Blocked": "bold white on red",
    "Idle": "blue", "Gone": "dim",  # no work held: never an alert (SPEC section 4)
}  # fmt: skip
STATE_STYLE = {
    IN_PROGRESS: "bold cyan", "ready": "bold green", "waiting": "dim", PENDING: "white",
    ASSIGNED: "magenta", BLOCKED: "yellow", COMPLETE: "green", FAILED: "bold red",
    CANCELLED: "dim",
}  # fmt: skip
BREAKER_STYLE = {"closed": "green", "open": "bold red", "half_open": "yellow"}
#: Alert kinds shown in red; the others (stuck agent, expired lease, stale task) in yellow.
RED_ALERTS = frozenset({"corrupt", "blocked_agent", "breaker_open"})


# -- small pieces --------------------------------------------------------------------------------
def bar(percent: float | None, width: int, style: str = "cyan") -> Text:
    """``█████░░░░░  52%``: a bar of ``width`` cells and the percentage."""
    if percent is None:
        return Text("-", style="dim")
    pct = max(0.0, min(100.0, percent))
    filled = round(width * pct / 100.0)
    out = Text()
    out.append("█" * filled, style=style)
    out.append("░" * (width - filled), style="grey37")
    out.append(f" {pct:3.0f}%")
    return out


def hms(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def _left(seconds: float) -> str:
    return duration(seconds) if seconds > 0 else "now"


def state_label(task: Task, ready: set[str]) -> str:
    if task.status in (PENDING, ASSIGNED):
        if task.id in ready:
            return "ready" if task.status == PENDING else ASSIGNED
        return "waiting"
    return task.status


def _fit(values: Iterable[str], low: int, high: int) -> int:
    """A column width for ``values`` between ``low`` and ``high``."""
    return max(low, min(high, max((len(v) for v in values), default=low)))


def _panel(body: RenderableType, title: str, style: str = "blue", more: str = "") -> Panel:
    return Panel(
        body, title=f"[bold]{title}[/]", title_align="left", border_style=style,
        subtitle=Text(more, style="dim") if more else None, subtitle_align="right",
        box=box.ROUNDED, padding=(0, 0),
    )  # fmt: skip


def _table(*columns: tuple[str, dict[str, Any]]) -> Table:
    table = Table(
        box=None, expand=True, show_edge=False, pad_edge=False, padding=(0, 1),
        header_style="bold",
    )  # fmt: skip
    for name, opts in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis", **opts)
    return table


# -- header and footer ---------------------------------------------------------------------------
def timer_text(snap: Snapshot, now: float, *, long: bool = False) -> Text:
    """``⏰ timer #4 next 12s`` for the first running timer, else its last state."""
    if not snap.timers:
        return Text("timer: none", style="dim")
    t = snap.timers[0]
    name = "" if t.get("name") == "default" else f" {_s(str(t.get('name')))}"
    count = t.get("count")
    if t.get("running"):
        out = Text(f"⏰ timer{name} #{_s(str(count)) if count is not None else '-'}", style="bold")
        if t.get("next_in") is not None:
            left = float(t["next_in"]) - (now - snap.now)
            out.append(f" next {_left(left)}", style="bold magenta")
        if long and isinstance(t.get("interval"), (int, float)):
            out.append(f" (every {duration(float(t['interval']))})", style="dim")
        return out
    state = _s(str(t.get("state", "stopped")))
    return Text(f"timer{name}: {state} (#{_s(str(count))})", style="dim")


def header(snap: Snapshot, now: float, width: int) -> Text:
    counts = snap.counts
    out = Text()
    out.append(f" {_s(snap.title)} ", style="bold white on blue")
    out.append(" ")
    parts: list[tuple[str, str]] = []
    if counts.get(IN_PROGRESS):
        parts.append((f"{counts[IN_PROGRESS]} running", "bold cyan"))
    ready = len([t for t in snap.tasks if t.id in snap.ready])
    if ready:
        parts.append((f"{ready} ready", "green"))
    done = counts.get(COMPLETE, 0)
    word = "complete" if width >= 100 else "done"
    parts.append((f"{done}/{snap.total_tasks} {word}", "green" if done else ""))
    if counts.get(FAILED):
        parts.append((f"{counts[FAILED]} failed", "bold red"))
    if counts.get(BLOCKED):
        parts.append((f"{counts[BLOCKED]} blocked", "yellow"))
    out.append_text(Text(" · ", style="dim").join(Text(t, style=st) for t, st in parts))
    return _spread(out, timer_text(snap, now, long=width >= WIDE), width)


def _spread(left: Text, right: Text, width: int) -> Text:
    """``left`` and ``right`` on one line of ``width`` (right dropped if there is no room)."""
    gap = width - left.cell_len - right.cell_len
    if gap >= 2:
        left.append(" " * gap)
        left.append_text(right)
    left.truncate(width, overflow="ellipsis")
    return left


def footer(snap: Snapshot, now: float, width: int) -> Text:
    out = Text()
    out.append(" q ", style="bold reverse")
    out.append(" quit ", style="dim")
    if snap.error:
        out.append(f" ✖ {_s(snap.error)}", style="bold red")
    elif snap.notes:
        out.append(f" {_s(snap.notes[-1])}", style="italic")
    right, room = f"{_s(snap.location)}  {hms(now)} UTC ", width - out.cell_len - 2
    if len(right) > room:  # keep the end of the path and the clock
        right = "…" + right[-(room - 1) :] if room > 12 else ""
    return _spread(out, Text(right, style="dim"), width)


# -- agents --------------------------------------------------------------------------------------
def _class_cell(row: dict[str, Any], elapsed: float) -> Text:
    health = row.get("class")
    if health is None:
        return Text(_s(str(row.get("status"))), style="dim")
    out = Text(_s(str(health)), style=CLASS_STYLE.get(health, ""))
    if row.get("silence") is not None:
        out.append(f" {duration(row['silence'] + elapsed)}", style="dim")
    return out


def _breaker_cell(row: dict[str, Any]) -> Text:
    state = str(row.get("breaker"))
    out = Text(_s(state.replace("_", "-")), style=BREAKER_STYLE.get(state, ""))
    if row.get("breaker_failures"):
        out.append(f" {row['breaker_failures']}/{row.get('breaker_threshold', 3)}", style="red")
    return out


def _task_cell(row: dict[str, Any]) -> Text:
    if not row.get("tasks"):
        return Text(_s(str(row.get("status"))) if row.get("class") else "-", style="dim")
    out = Text()
    for i, held in enumerate(row["tasks"]):
        out.append(", " if i else "")
        out.append(_s(str(held["id"])), style="bold")
        if held.get("percent") is not None:
            out.append(f" {held['percent']:.0f}%", style="cyan")
    return out


def _mail_cell(row: dict[str, Any]) -> Text:
    """``✉3`` for unread messages, ``-`` for none, ``?`` when the mailbox was unreadable."""
    unread = row.get("unread")
    if unread is None:
        return Text("?" if "unread" in row else "-", style="dim")
    return Text(f"✉{unread}", style="bold yellow") if unread else Text("-", style="dim")


def agents_panel(snap: Snapshot, now: float, height: int, width: int) -> Panel:
    """One row per agent: name, monitor class and silence, workload, breaker, unread messages
    (a MAIL column from 90 columns on, else after the name) and the tasks it holds."""
    fit = max(1, height - 3)
    bar_w = 10 if width >= 100 else 5
    mail = width >= 90
    names = [
        _s(str(r["agent"])) + ("" if mail or not r.get("unread") else " ✉") for r in snap.agents
    ]
    cols: list[tuple[str, dict[str, Any]]] = [
        ("AGENT", {"width": _fit(names, 5, 20)}),
        ("CLASS", {"width": 17}),
        ("LOAD", {"width": bar_w + 5}),
        ("BREAKER", {"width": 10}),
    ]
    if mail:
        cols.append(("MAIL", {"width": 5, "justify": "right"}))
    cols.append(("TASK", {"ratio": 1, "min_width": 6}))
    table = _table(*cols)
    rows = snap.agents
    shown = rows[:fit]
    elapsed = now - snap.now
    for row in shown:
        load = int(row.get("workload") or 0)
        name = Text(_s(str(row["agent"])))
        if not mail and row.get("unread"):
            name.append(" ✉", style="bold yellow")
        cells = [
            name,
            _class_cell(row, elapsed),
            bar(load, bar_w, "green" if load < 90 else "yellow"),
            _breaker_cell(row),
        ]
        if mail:
            cells.append(_mail_cell(row))
        cells.append(_task_cell(row))
        table.add_row(*cells, style="dim" if row.get("class") is None else "")
    more = f" … {len(rows) - len(shown)} more " if len(shown) < len(rows) else ""
    sick = sum(1 for r in rows if r.get("class") in ("Stuck", "Blocked"))
    title = f"Agents ({len(rows)})" + (f" · {sick} need attention" if sick else "")
    if not rows:
        return _panel(Text("no agents yet: coord agent register NAME", style="dim"), title)
    return _panel(table, title, "red" if sick else "blue", more)


# -- tasks ---------------------------------------------------------------------------------------
def _progress_cell(task: Task, label: str, bar_w: int, states: dict[str, str]) -> Text:
    if task.status == FAILED:
        return Text(f"✖ {_s(task.error or 'failed')}", style="red")
    if task.status == BLOCKED:  # "dependency augment is failed" -> "⊘ augment failed"
        why = (task.blocked_reason or "blocked").replace("dependency ", "").replace(" is ", " ")
        return Text(f"⊘ {_s(why)}", style="yellow")
    if label == "waiting":
        unmet = [d for d in task.depends_on if states.get(d) != COMPLETE]
        return Text("after " + ", ".join(_s(d) for d in unmet or task.depends_on), style="dim")
    pct = task.progress_percent()
    if task.status == COMPLETE:
        return bar(100.0 if pct is None else pct, bar_w, "green")
    if pct is None:
        return Text("-" if task.status != IN_PROGRESS else "started", style="dim")
    return bar(pct, bar_w, "cyan")


def _lease_cell(task: Task, now: float) -> Text:
    if task.status != IN_PROGRESS or task.lease_expires is None:
        return Text("-", style="dim")
    left = task.lease_expires - now
    if left <= 0:
        return Text("expired", style="bold red")
    warn = left < 0.25 * task.lease_seconds
    return Text(duration(left) if left >= 1 else f"{left:.1f}s", style="yellow" if warn else "")


def _eta_cell(task: Task, now: float) -> Text:
    if task.status != IN_PROGRESS or task.eta is None:
        return Text("-", style="dim")
    return Text(_left(task.eta - now))


def _metrics_text(task: Task, limit: int = 2) -> str:
    shown = []
    for key, value in task.metrics.items():
        if key in ("step", "total_steps"):
            continue
        text = str(value)
        if isinstance(value, float):  # 1234.5 -> 1234, 0.43215 -> 0.432
            text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
        shown.append(f"{_s(key)}={_s(text)}")
        if len(shown) >= limit:
            break
    return " ".join(shown)


def tasks_panel(snap: Snapshot, now: float, height: int, width: int) -> Panel:
    fit = max(1, height - 3)
    wide, wider = width >= 90, width >= 120
    bar_w = 16 if width >= 140 else 12 if wide else 8
    ids = _fit((_s(t.id) for t in snap.tasks), 4, 20)
    cols: list[tuple[str, dict[str, Any]]] = [
        ("TASK", {"width": ids} if wide else {"ratio": 1, "min_width": min(ids, 8)})
    ]
    if wide:
        cols.append(("TITLE", {"ratio": 1, "min_width": 8}))
    cols += [
        ("STATE", {"width": 11}),
        ("OWNER", {"width": _fit((_s(t.agent or "-") for t in snap.tasks), 5, 16)}),
        ("PROGRESS", {"width": bar_w + 11}),  # the bar, or the start of a reason
        ("ETA", {"width": 6, "justify": "right"}),
        ("LEASE", {"width": 7, "justify": "right"}),
    ]
    if wider:
        cols.insert(-2, ("METRICS", {"ratio": 1, "min_width": 8, "style": "dim"}))
    table = _table(*cols)
    tasks = snap.tasks
    states = {t.id: t.status for t in tasks}
    shown = tasks[:fit]
    for task in shown:
        label = state_label(task, snap.ready)
        cells: list[Text] = [Text(_s(task.id), style="bold")]
        if wide:
            cells.append(Text(_s(task.title)))
        cells += [
            Text(_s(label), style=STATE_STYLE.get(label, "")),
            Text(_s(task.agent or "-"), style="" if task.agent else "dim"),
            _progress_cell(task, label, bar_w, states),
        ]
        if wider:
            cells.append(Text(_metrics_text(task)))
        cells += [_eta_cell(task, now), _lease_cell(task, now)]
        table.add_row(*cells)
    hidden = snap.total_tasks - len(shown)
    more = ""
    if hidden > 0:
        rest: dict[str, int] = {}
        for task in tasks[len(shown) :]:
            label = state_label(task, snap.ready)
            rest[label] = rest.get(label, 0) + 1
        detail = ", ".join(f"{n} {_s(s)}" for s, n in rest.items())
        more = f" … {hidden} more" + (f": {detail} " if detail else " ")
    if snap.total_tasks == 0:
        return _panel(Text('no tasks yet: coord task create "TITLE"', style="dim"), "Tasks (0)")
    return _panel(table, f"Tasks ({snap.total_tasks})", more=more)


# -- reservations --------------------------------------------------------------------------------
def _until_cell(row: dict[str, Any], now: float, then: float) -> Text:
    """Time left of a TTL (moving with the clock), ``task ID`` or ``released``."""
    left = row.get("expires_in")
    if left is not None:
        rest = float(left) - (now - then)
        return Text(_left(rest), style="yellow" if rest < 60 else "")
    if row.get("task"):
        return Text(f"task {_s(str(row['task']))}", style="cyan")
    return Text("released", style="dim")


def reservations_panel(snap: Snapshot, now: float, height: int, width: int) -> Panel:
    """The live file reservations: agent, patterns, mode, and until when (TTL left, its
    task's lease, or until released)."""
    fit = max(1, height - 3)
    rows = snap.reservations
    table = _table(
        ("AGENT", {"width": _fit((_s(str(r["agent"])) for r in rows), 5, 16)}),
        ("PATHS", {"ratio": 1, "min_width": 6}),
        ("MODE", {"width": 6}),
        ("UNTIL", {"width": _fit(("task " + str(r.get("task") or "") for r in rows), 7, 14)}),
    )
    shown = rows[:fit]
    for row in shown:
        mode = str(row.get("mode"))
        table.add_row(
            Text(_s(str(row["agent"])), style="bold"),
            Text(" ".join(_s(str(p)) for p in row["patterns"])),
            Text(
                "excl" if mode == "exclusive" else _s(mode),
                style="magenta" if mode == "exclusive" else "dim",
            ),
            _until_cell(row, now, snap.now),
        )
    total = max(snap.reservations_total, len(rows))
    more = f" … {total - len(shown)} more: coord files list " if total > len(shown) else ""
    if not rows:
        return _panel(Text("none: coord files reserve PATH", style="dim"), "Reservations (0)")
    exclusive = sum(1 for r in rows if r.get("mode") == "exclusive")
    return _panel(table, f"Reservations ({total}) · {exclusive} exclusive", "magenta", more)


def _reservations_height(snap: Snapshot, cap: int) -> int:
    """The reservations panel's height: 0 without reservations, else its rows (at most
    ``cap``) and its frame."""
    if not snap.reservations:
        return 0
    return max(1, min(len(snap.reservations), cap)) + 3


# -- events, alerts, timer -----------------------------------------------------------------------
def event_line(event: Event, width: int, *, channel: bool) -> Text:
    fields = dict(event.fields)
    agent = fields.pop("Agent", None)
    out = Text(hms(event.time), style="dim")
    if channel:
        out.append(f" {_s(event.channel)}", style="blue")
    out.append(" ")
    if agent:
        out.append(f"{_s(agent)} ", style="bold")
    style = "red" if "fail" in event.type or "kill" in event.type else "cyan"
    out.append(_s(event.type), style=style)
    rest = " ".join(f"{_s(k)}={_s(v)}" for k, v in fields.items())
    if rest:
        out.append(" " + rest)
    out.truncate(width, overflow="ellipsis")
    return out


def alert_line(alert: dict[str, Any], width: int) -> Text:
    out = Text("! ", style="bold red")
    style = "red" if alert.get("kind") in RED_ALERTS else "yellow"
    out.append(_s(str(alert.get("message", ""))), style=style)
    out.truncate(width, overflow="ellipsis")
    return out


def _lines(lines: list[Text], title: str, style: str, more: str = "") -> Panel:
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return _panel(Group(*lines), title, style, more)


def events_panel(snap: Snapshot, height: int, width: int, *, alerts: int = 0) -> Panel:
    """The newest events that fit, after ``alerts`` alert lines (the stacked layout has no room
    for an alerts panel)."""
    fit = max(1, height - 2)
    lines = [alert_line(a, width - 2) for a in snap.alerts[: min(alerts, fit)]]
    room = fit - len(lines)
    several = len({e.channel for e in snap.events}) > 1
    lines += [event_line(e, width - 2, channel=several) for e in snap.events[-room:] if room]
    if not snap.events and room > 0:
        lines.append(Text("no events yet", style="dim"))
    if alerts and snap.alerts:
        return _lines(lines, f"Alerts ({len(snap.alerts)}) · Events", "red")
    return _lines(lines, "Events", "blue")


def alerts_panel(snap: Snapshot, height: int, width: int) -> Panel:
    fit, alerts = max(1, height - 2), snap.alerts
    lines = [alert_line(a, width - 2) for a in alerts[:fit]] or [Text("none", style="green")]
    more = f" … {len(alerts) - fit} more: coord status " if len(alerts) > fit else ""
    return _lines(lines, f"Alerts ({len(alerts)})", "red" if alerts else "green", more)


def timer_panel(snap: Snapshot, now: float) -> Panel:
    line = timer_text(snap, now, long=True)
    if snap.timers and snap.timers[0].get("last_tick"):
        line.append(f" · last {_s(str(snap.timers[0]['last_tick'])[-8:])}", style="dim")
    lines = [line, *(Text(_s(n), style="italic magenta") for n in snap.notes[-3:])]
    return _lines(lines, "Timer" + (" · demo" if snap.notes else ""), "magenta")


# -- the whole frame -----------------------------------------------------------------------------
def render(snap: Snapshot, width: int, height: int, *, now: float | None = None) -> Layout:
    """The frame for a ``width`` x ``height`` screen at time ``now`` (default: the snapshot's)."""
    when = snap.now if now is None else now
    width, height = max(width, MIN_WIDTH), max(height, MIN_HEIGHT)
    root, body, body_h = Layout(name="root"), Layout(name="body"), height - 2
    root.split_column(
        Layout(header(snap, when, width), size=1),
        body,
        Layout(footer(snap, when, width), size=1),
    )
    if width >= WIDE and height >= 20:
        _wide(body, snap, when, width, body_h)
    else:
        _stacked(body, snap, when, width, body_h)
    return root


def _agents_height(snap: Snapshot, cap: int) -> int:
    return max(1, min(len(snap.agents), cap)) + 3


def _stacked(body: Layout, snap: Snapshot, now: float, width: int, height: int) -> None:
    events_h = 6 if height >= 20 else 4
    alerts = min(len(snap.alerts), 2)  # (the footer shows the newest note)
    events_h += alerts
    agents_h = _agents_height(snap, max(2, (height - events_h) // 2 - 3))
    held_h = _reservations_height(snap, 3 if height >= 30 else 2)
    tasks_h = height - agents_h - events_h - held_h
    if tasks_h < 5 and held_h:  # the task board goes first: reservations give way
        held_h = 0
        tasks_h = height - agents_h - events_h
    if tasks_h < 5:  # give the task board room before anything else
        events_h = max(3, events_h - (5 - tasks_h))
        tasks_h = height - agents_h - events_h
    parts = [
        Layout(agents_panel(snap, now, agents_h, width), size=agents_h),
        Layout(tasks_panel(snap, now, tasks_h, width), size=tasks_h),
    ]
    if held_h:
        parts.append(Layout(reservations_panel(snap, now, held_h, width), size=held_h))
    parts.append(Layout(events_panel(snap, events_h, width, alerts=alerts), size=events_h))
    body.split_column(*parts)


def _wide(body: Layout, snap: Snapshot, now: float, width: int, height: int) -> None:
    """Agents beside timer and alerts on top; tasks, then events, at full width below."""
    right_w = max(40, width * 2 // 5)
    timer_h = 3 + min(2, len(snap.notes))
    top_h = max(_agents_height(snap, max(2, height // 3 - 3)), timer_h + 3)
    top_h = max(top_h, min(timer_h + min(len(snap.alerts), 6) + 2, height // 3 + 1))
    held_want = _reservations_height(snap, 6)
    if held_want:  # room for the reservations beside the agents, within half the screen
        top_h = max(top_h, min(timer_h + held_want + 3, height // 2))
    rest = height - top_h
    tasks_h = max(4, min(rest - 6, max(1, snap.total_tasks, len(snap.tasks)) + 3))
    top, right = Layout(name="top", size=top_h), Layout(name="right", size=right_w)
    body.split_column(
        top,
        Layout(tasks_panel(snap, now, tasks_h, width), size=tasks_h),
        Layout(events_panel(snap, rest - tasks_h, width), size=rest - tasks_h),
    )
    top.split_row(
        Layout(agents_panel(snap, now, top_h, width - right_w), size=width - right_w), right
    )
    alerts_min = 3 + min(len(snap.alerts), 2)  # "none", or the first alerts
    held_h = min(_reservations_height(snap, 6), max(0, top_h - timer_h - alerts_min))
    if held_h < 4:  # no room for even one row beside the alerts
        held_h = 0
    parts = [Layout(timer_panel(snap, now), size=timer_h)]
    if held_h:
        parts.append(Layout(reservations_panel(snap, now, held_h, right_w), size=held_h))
    alerts_h = top_h - timer_h - held_h
    parts.append(Layout(alerts_panel(snap, alerts_h, right_w), size=alerts_h))
    right.split_column(*parts)
