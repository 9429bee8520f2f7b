"""``agent-{name}.md``: the seed's "Agent Status File Format".

Header fields: ``**Status**`` (upper-case in the file, lower-case in the model), ``**Last
Updated**`` (= ``last_seen``), ``**Workload**``, ``**Registered**``, ``**Capabilities**`` and,
once a session registered the name, ``**Session**: TOKEN (generation N)`` (SPEC section 11).
Sections: Active Tasks, Recent Completions (Last 24h), Metrics, Circuit Breaker and Notes; any other
section a person added is kept verbatim in ``extra_sections``.

The view sections parse back into these dicts (parse always fills every key; render tolerates
missing ones):

- ``active`` items: ``id`` (task id), ``title`` (str), ``project`` (name or None), ``status``
  (str), ``started`` (float or None), ``percent``, ``current``, ``total`` (float or None),
  ``unit`` (str, default ``"steps"``), ``metrics`` (dict of JSON values); and ``updated`` (when
  the entry was last refreshed, float or None) only when the file has its ``Updated`` line (the
  seed's format has none; every entry the domain makes has one).
- ``recent`` items: ``id``, ``title``, ``completed`` (float or None), ``duration`` (seconds, float
  or None), ``success`` (bool, None when unknown).
- ``stats``: ``{}`` or all of ``success_rate`` (percent, float or None), ``succeeded``,
  ``finished``, ``failed`` (int) and ``average_duration`` (seconds, float or None).

Normalisation: ``notes`` is stored as :func:`normalize_block` leaves it; empty capabilities are
dropped; the Duration line of an active task is derived from ``now`` and ignored on parse.

User-supplied text is escaped (:func:`escape_line`) and has the word ``Workload`` written as
``Work\\x6coad``, so the seed recipe ``grep -oP 'Workload.*:\\s*\\K\\d+'`` only finds the header.
"""

from __future__ import annotations

import json
import re

from ....core.clock import duration, exact_duration, iso, parse_duration, parse_iso
from ....core.models import AGENT_STATES, BREAKER_STATES, Agent
from ....core.validate import NAME_PATTERN, is_valid_name
from .text import (
    Doc,
    Section,
    escape_block,
    escape_line,
    finite,
    fmt_number,
    loads_json,
    parse_doc,
    parse_int,
    unescape_block,
    unescape_line,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NA = "N/A"
_STRUCTURAL = frozenset("#`~*-_=>|+[")
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_WORKLOAD = re.compile(r"(\d+)\s*%?")
_SESSION = re.compile(r"([0-9a-f]{1,64}|N/A)\s*\(\s*generation\s+(\d{1,15})\s*\)", re.I)
# No two adjacent patterns may both match a run of spaces: that backtracks quadratically on long
# hand-edited lines. Values are stripped in Python instead.
_PCT = re.compile(rf"(?:(?P<pct>{_NUM})(?:\s*%)?)?")
_COUNT = re.compile(rf"\s*(?P<cur>{_NUM}|\?)\s*/\s*(?P<tot>{_NUM}|\?)(?:\s+|(?=\)))")
_RATE = re.compile(rf"(?:(?P<rate>{_NUM})\s*%|N/A|-)?\s*(?:\(\s*(-?\d+)\s*/\s*(-?\d+)\s*\))?", re.I)
_HEAD = re.compile(r"###(?!#)(?:\s*Task\s*:)?(.*)$", re.I)
_HEAD_PROJECT = re.compile(rf"(?P<title>.*)\((?P<project>{NAME_PATTERN})\)")
_SUB = re.compile(r"\s+[-*+]\s(?P<key>[^:]*):(?P<val>.*)$")  # "  - Key: value" under an item
_RECENT = re.compile(r"[-*+]\s+\*\*(?P<title>.*)\*\*\s*\((?P<id>[^()]*)\)\s*$")
_YES = frozenset({"✅", "✔", "✔️", "✓", "yes", "y", "true", "ok", "success", "succeeded"})
_NO = frozenset({"❌", "✗", "✘", "no", "n", "false", "fail", "failed", "failure"})
_UNKNOWN = frozenset({"?", "", NA.lower(), "-", "unknown"})


# --------------------------------------------------------------------------- rendering ----------


def _inline(value: str, extra: str = "") -> str:
    """Escape text that sits mid-line: no structural guard needed, ``extra`` characters hex-escaped
    (they delimit the value on its line)."""
    out = escape_line(value)
    if len(out) > 1 and out[0] == "\\" and out[1] in _STRUCTURAL:
        out = out[1:]  # the guard only matters at the start of a line; unescaping is unchanged
    for ch in extra:
        out = out.replace(ch, f"\\x{ord(ch):02x}")
    return _unworkload(out)


def _unworkload(escaped: str) -> str:
    # Safe inside escaped text: the "k" before the replaced "l" can never be an escape backslash.
    return escaped.replace("Workload", "Work\\x6coad")


def _ts(value: float | None) -> str:
    return iso(value) if value is not None else NA


def _num(value: float | None) -> str:
    return fmt_number(value) if value is not None else "?"


def _fmt_dur(seconds: float | None) -> str:
    return exact_duration(seconds) if seconds is not None else NA


def _metric_value(value: object) -> str:
    # Plain strings stay readable (``Loss: 0.42`` is how people write them); anything else, and a
    # string that would read back as JSON, is written as JSON so its type survives.
    if isinstance(value, str) and not _loads(value)[0]:
        return _inline(value)
    return _inline(json.dumps(value, ensure_ascii=False))


def _progress(item: dict[str, Any]) -> str | None:
    pct, cur, tot = item.get("percent"), item.get("current"), item.get("total")
    unit = item.get("unit", "steps")
    parts = []
    if pct is not None:
        parts.append(f"{fmt_number(pct)}%")
    if cur is not None or tot is not None or unit != "steps":
        tail = f" {_inline(unit)}" if unit else ""
        parts.append(f"({_num(cur)}/{_num(tot)}{tail})")
    return " ".join(parts) or None


def render_agent(agent: Agent, now: float) -> str:
    """Render ``agent`` as the seed's markdown; ``now`` only feeds the derived Duration lines."""
    out: list[str] = [f"# Agent: {agent.name}", ""]
    add = out.append
    add(f"**Status**: {agent.status.upper()}")
    add(f"**Last Updated**: {iso(agent.last_seen)}")
    # Clamped: a file the parser refuses would block every later write of this agent.
    add(f"**Workload**: {max(0, min(100, int(agent.workload)))}%")
    add(f"**Registered**: {iso(agent.registered_at)}")
    if agent.capabilities:
        add(f"**Capabilities**: {', '.join(_inline(c, ',') for c in agent.capabilities)}")
    if agent.session or agent.generation:
        # SPEC 11: the session that holds the name, and how many have held it.
        add(f"**Session**: {agent.session or NA} (generation {agent.generation})")

    add("")
    add("## Active Tasks")
    for item in agent.active:
        title, project = _inline(item.get("title") or ""), item.get("project")
        if project:
            title = f"{title} ({project})"
        elif title.endswith(")"):  # would read back as "(project)"
            title = title[:-1] + "\\x29"
        add("")
        add(f"### Task: {title}")
        add(f"- **Task ID**: {item['id']}")
        started = item.get("started")
        if started is not None:
            add(f"- **Started**: {iso(started)}")
            add(f"- **Duration**: {duration(now - started)}")
        if "updated" in item:
            add(f"- **Updated**: {_ts(item['updated'])}")
        add(f"- **Status**: {_inline(item.get('status') or '')}")
        progress = _progress(item)
        if progress is not None:
            add(f"- **Progress**: {progress}")
        if item.get("metrics"):
            add("- **Metrics**:")
            for key, value in item["metrics"].items():
                add(f"  - {_inline(key, ':*')}: {_metric_value(value)}")

    add("")
    add("## Recent Completions (Last 24h)")
    for item in agent.recent:
        success = item.get("success")
        add("")
        add(f"- **{_inline(item.get('title') or '', '*')}** ({item['id']})")
        add(f"  - Completed: {_ts(item.get('completed'))}")
        add(f"  - Duration: {_fmt_dur(item.get('duration'))}")
        add(f"  - Success: {'?' if success is None else '✅' if success else '❌'}")

    if agent.stats:
        st = agent.stats
        rate = st.get("success_rate")
        finished = st.get("finished", 0)
        add("")
        add("## Metrics")
        add("")
        shown = f"{fmt_number(rate)}%" if rate is not None else NA
        counts = f"{fmt_number(st.get('succeeded', 0))}/{fmt_number(finished)}"
        add(f"- **Success Rate**: {shown} ({counts})")
        add(f"- **Average Duration**: {_fmt_dur(st.get('average_duration'))}")
        add(f"- **Total Tasks (24h)**: {fmt_number(finished)}")
        add(f"- **Failed Tasks**: {fmt_number(st.get('failed', 0))}")

    add("")
    add("## Circuit Breaker")
    add("")
    add(f"- **State**: {agent.breaker_state.upper()}")
    add(f"- **Failure Count**: {agent.breaker_failures}/{agent.breaker_threshold}")
    add(f"- **Last Failure**: {_ts(agent.last_failure)}")
    if agent.breaker_opened_at is not None:
        add(f"- **Opened**: {iso(agent.breaker_opened_at)}")
    if agent.last_failure_reason is not None:
        add(f"- **Last Failure Reason**: {_inline(agent.last_failure_reason)}")

    add("")
    add("## Notes")
    if agent.notes:
        add("")
        add(_unworkload(escape_block(agent.notes)))

    for heading, body in agent.extra_sections:
        add("")
        add(f"## {heading}")
        if body:
            add("")
            add(body)
    add("")
    return "\n".join(out)


# --------------------------------------------------------------------------- parsing ------------


def _loads(text: str) -> tuple[bool, Any]:
    try:
        return True, loads_json(text)
    except (ValueError, RecursionError):
        return False, None


def _time(doc: Doc, got: tuple[str, int] | None, name: str, what: str = "timestamp") -> Any:
    """A timestamp (or, with ``what="duration"``, a duration) field; N/A and the like are None."""
    if got is None or got[0].strip().lower() in _UNKNOWN:
        return None
    try:
        return (parse_iso if what == "timestamp" else parse_duration)(got[0].strip())
    except ValueError:
        raise doc.corrupt(got[1], f"**{name}** is not a {what}: {got[0].strip()!r}") from None


def _float(text: str | None) -> float | None:
    return None if text is None or text == "?" else finite(text)  # the regex matched a number


def parse_agent(text: str, path: str) -> Agent:
    """Parse an agent file; raises :class:`CorruptData` naming the line for anything unreadable."""
    # Only a person's editor writes CRLF: escaped values never contain a raw "\r".
    doc = parse_doc(text.replace("\r\n", "\n"), path)
    if doc.title is None or not doc.title.lower().startswith("agent:"):
        raise doc.corrupt(doc.title_line or 1, "missing '# Agent: <name>' heading")
    name = doc.title[6:].strip()
    if not is_valid_name(name):
        raise doc.corrupt(doc.title_line, f"invalid agent name {name!r}")
    status, status_line = doc.field("Status", required=True) or ("", 0)
    status = status.strip().lower().replace(" ", "_").replace("-", "_")
    if status not in AGENT_STATES:
        raise doc.corrupt(status_line, f"unknown status {status!r} ({', '.join(AGENT_STATES)})")
    agent = Agent(name, status=status)

    seen = _time(doc, doc.field("Last Updated"), "Last Updated")
    agent.last_seen = seen if seen is not None else 0.0
    registered = _time(doc, doc.field("Registered"), "Registered")
    agent.registered_at = registered if registered is not None else 0.0
    workload = doc.field("Workload")
    if workload is not None:
        m = _WORKLOAD.fullmatch(workload[0].strip())
        if m is None or len(m.group(1)) > 3 or int(m.group(1)) > 100:
            raise doc.corrupt(workload[1], f"**Workload** is not 0-100%: {workload[0]!r}")
        agent.workload = int(m.group(1))
    session = doc.field("Session")
    if session is not None:
        m = _SESSION.fullmatch(session[0].strip())
        if m is None:
            raise doc.corrupt(
                session[1], f"**Session** is not 'TOKEN (generation N)': {session[0]!r}"
            )
        agent.session = "" if m.group(1).upper() == NA else m.group(1)
        agent.generation = int(m.group(2))
    caps = doc.field("Capabilities")
    if caps is not None:
        items = (c.strip() for c in caps[0].split(","))
        agent.capabilities = [unescape_line(c) for c in items if c]

    for section in doc.sections:
        heading = section.heading.lower()
        if heading == "active tasks":
            agent.active.extend(_parse_active(doc, section))
        elif heading.startswith("recent completions"):
            agent.recent.extend(_parse_recent(doc, section))
        elif heading == "metrics":
            agent.stats = _parse_stats(doc, section)
        elif heading == "circuit breaker":
            _parse_breaker(doc, section, agent)
        elif heading == "notes":
            agent.notes = unescape_block(section.body())
        else:
            agent.extra_sections.append((section.heading, "\n".join(section.body())))
    return agent


def _parse_active(doc: Doc, section: Section) -> list[dict[str, Any]]:
    items: list[Section] = []
    for no, line in section.lines:
        head = _HEAD.match(line)
        if head is not None:
            items.append(Section(head.group(1).strip(), no))
        elif items:
            items[-1].lines.append((no, line))
    return [_parse_active_item(doc, item) for item in items]


def _parse_active_item(doc: Doc, item: Section) -> dict[str, Any]:
    m = _HEAD_PROJECT.fullmatch(item.heading)
    # Escaped titles never end in raw whitespace, so rstrip only undoes the " " before "(".
    title, project = (m.group("title").rstrip(), m.group("project")) if m else (item.heading, None)
    f = item.fields()
    tid = f.get("task id")
    if tid is None:
        raise doc.corrupt(item.line, "active task without **Task ID**")
    if not is_valid_name(tid[0].strip()):
        raise doc.corrupt(tid[1], f"invalid task id {tid[0].strip()!r}")
    out: dict[str, Any] = dict(id=tid[0].strip(), title=unescape_line(title), project=project)
    out["status"] = unescape_line(f["status"][0].strip()) if "status" in f else ""
    out["started"] = _time(doc, f.get("started"), "Started")
    if "updated" in f:
        out["updated"] = _time(doc, f["updated"], "Updated")
    out.update(percent=None, current=None, total=None, unit="steps", metrics={})
    progress = f.get("progress")
    if progress is not None:
        # "35% (3500/10000 steps)": the unit may itself contain parentheses.
        head, paren, tail = progress[0].strip().partition("(")
        p, c = _PCT.fullmatch(head.strip()), _COUNT.match(tail)
        if p is None or (paren and (c is None or not tail.endswith(")"))):
            raise doc.corrupt(progress[1], f"**Progress** is not a figure: {progress[0]!r}")
        out["percent"] = _float(p.group("pct"))
        if paren and c is not None:
            out["current"], out["total"] = _float(c.group("cur")), _float(c.group("tot"))
            out["unit"] = unescape_line(tail[c.end() : -1].strip())
    metrics_at = f["metrics"][1] if "metrics" in f else None
    for no, line in item.lines:
        if metrics_at is None or no <= metrics_at or not line.strip():
            continue
        mm = _SUB.match(line)
        if mm is None:
            break
        raw = unescape_line(mm.group("val").strip())
        ok, value = _loads(raw)
        out["metrics"][unescape_line(mm.group("key").strip())] = value if ok else raw
    return out


def _parse_recent(doc: Doc, section: Section) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for no, line in section.lines:
        m = _RECENT.match(line)
        if m is not None and not line[:1].isspace():
            tid = m.group("id").strip()
            if not is_valid_name(tid):
                raise doc.corrupt(no, f"invalid task id {tid!r}")
            title = unescape_line(m.group("title"))
            items.append(dict(id=tid, title=title, completed=None, duration=None, success=None))
            continue
        sub = _SUB.match(line)
        if sub is None or not items:
            continue
        key, value = sub.group("key").strip(" *").lower(), sub.group("val").strip()
        if key == "completed":
            items[-1]["completed"] = _time(doc, (value, no), "Completed")
        elif key == "duration":
            items[-1]["duration"] = _time(doc, (value, no), "Duration", "duration")
        elif key == "success":
            word = value.lower()
            if word not in _YES | _NO | _UNKNOWN:
                raise doc.corrupt(no, f"Success is not ✅ or ❌: {value!r}")
            items[-1]["success"] = True if word in _YES else False if word in _NO else None
    return items


def _parse_stats(doc: Doc, section: Section) -> dict[str, Any]:
    f = section.fields()
    if not f:
        return {}
    stats: dict[str, Any] = dict(success_rate=None, succeeded=0, finished=0, failed=0)
    stats["average_duration"] = None
    rate = f.get("success rate")
    if rate is not None:
        m = _RATE.fullmatch(rate[0].strip())
        if m is None:
            raise doc.corrupt(rate[1], f"**Success Rate** is not a figure: {rate[0]!r}")
        stats["success_rate"] = _float(m.group("rate"))
        if m.group(2) is not None:
            stats["succeeded"] = parse_int(doc, m.group(2), rate[1], "Success Rate")
            stats["finished"] = parse_int(doc, m.group(3), rate[1], "Success Rate")
    avg = f.get("average duration")
    if avg is not None:
        stats["average_duration"] = _time(doc, avg, "Average Duration", "duration")
    for key, field in (("finished", "total tasks (24h)"), ("failed", "failed tasks")):
        got = f.get(field)
        if got is not None:
            stats[key] = parse_int(doc, got[0], got[1], field.title())
    return stats


def _parse_breaker(doc: Doc, section: Section, agent: Agent) -> None:
    f = section.fields()
    state = f.get("state")
    if state is not None:
        value = state[0].strip().lower().replace(" ", "_").replace("-", "_")
        if value not in BREAKER_STATES:
            raise doc.corrupt(state[1], f"unknown breaker state {state[0].strip()!r}")
        agent.breaker_state = value
    count = f.get("failure count")
    if count is not None:
        failures, _, threshold = count[0].partition("/")
        agent.breaker_failures = parse_int(doc, failures, count[1], "Failure Count")
        if threshold.strip():
            agent.breaker_threshold = parse_int(doc, threshold, count[1], "Failure Count")
    agent.last_failure = _time(doc, f.get("last failure"), "Last Failure")
    agent.breaker_opened_at = _time(doc, f.get("opened"), "Opened")
    reason = f.get("last failure reason")
    if reason is not None:
        agent.last_failure_reason = unescape_line(reason[0])
