"""``task-{id}.md``: the seed's "Task Status File Format", plus the fields leases need.

Header fields (``**Field**: value``) carry the state that matters for correctness: id, status,
holder, lease, fencing epoch and attempts. Sections carry the seed's timeline, progress, metrics
(a fenced json block), references, dependencies, next steps, outcome and logs. Derived lines
(durations, remaining time, dependency status) are rendered for people and ignored on parse.
"""

from __future__ import annotations

import json
import math
import re

from ....core.clock import duration, exact_duration, iso, parse_duration, parse_iso, stamp
from ....core.models import TASK_STATES, LogLine, Task, TaskHead
from ....core.validate import is_valid_name
from .text import (
    Doc,
    Section,
    escape_block,
    escape_line,
    finite,
    fmt_number,
    json_block,
    loads_json,
    parse_doc,
    parse_int,
    unescape_block,
    unescape_line,
)

NONE = "-"
_DEP_EMOJI = {"complete": "✅", "failed": "❌", "cancelled": "⛔", "in_progress": "🟡"}
_MARKS = frozenset([*_DEP_EMOJI.values(), "⏳"])
_PROGRESS = re.compile(
    r"(?P<pct>-?[\d.]+(?:e[-+]?\d+)?)%(?:\s*\((?P<cur>-?[\d.e+-]+)/(?P<tot>-?[\d.e+-]+|\?)"
    r"(?: (?P<unit>[^)]*))?\))?",
    re.IGNORECASE,
)
# The id in parentheses at the end is the truth; the title before it is decoration. Matched from
# the end (``search`` on a pattern that starts with a literal) so a long line stays linear.
_DEP_TAIL = re.compile(
    r"\((?P<id>[A-Za-z0-9][A-Za-z0-9._-]{0,63})\)(?:[ \t]*-[ \t]*(?P<status>[A-Za-z_ ]+))?[ \t]*$"
)
_REF = re.compile(r"-\s*(?P<label>[^`]*?):\s*`(?P<ref>[^`]*)`\s*$")
_STEP = re.compile(r"\s*\d+[.)]\s+(.*)$")
_LOG = re.compile(r"\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)\]\s?(.*)$")
# What a description line may not say verbatim (see _description_line).
_FENCE_START = re.compile(r"\s{0,3}(?:`{3,}|~{3,})")
_CONFLICTS = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")
# A field line (``**Status**: x``, ``- **Created**: x``) that the seeds' grep recipes would read.
_FIELD_LIKE = re.compile(r"\s*(?:[-*+]\s+)?\*\*[^*\n]+?\*\*\s*:")
_UNSAFE = re.compile(r"[\\\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029\t]")


def _opt(value: str | None) -> str:
    return value if value else NONE


def _ts(value: float | None) -> str:
    return iso(value) if value is not None else NONE


def written_head(task: Task) -> TaskHead:
    """The head of ``task`` as its file states it once rendered: the file keeps times to the
    second (floored), while a task in memory carries the fractions of the clock it was made
    with. (Every other head field is written exactly.)"""
    head = TaskHead.of(task)
    for attr in ("created_at", "updated_at", "lease_expires"):
        value = getattr(head, attr)
        if value is not None:
            setattr(head, attr, float(math.floor(value)))
    return head


def render_task(task: Task, now: float) -> str:
    """Render ``task`` as the seed's markdown; ``now`` only feeds the derived duration lines."""
    out: list[str] = [f"# Task: {escape_line(task.title)}", ""]
    add = out.append
    add(f"**Task ID**: {task.id}")
    add(f"**Project ID**: {_opt(task.project)}")
    add(f"**Status**: {task.status}")
    add(f"**Assigned Agent**: {_opt(task.agent)}")
    add(f"**Priority**: {task.priority}")
    add(f"**Epoch**: {task.epoch}")
    add(f"**Lease Expires**: {_ts(task.lease_expires)}")
    add(f"**Lease Duration**: {exact_duration(task.lease_seconds)}")
    if task.lease_grant is not None:
        add(f"**Grant Lease**: {exact_duration(task.lease_grant)}")
    add(f"**Attempts**: {task.attempts}/{task.max_attempts}")
    if task.created_by:
        add(f"**Created By**: {task.created_by}")
    if task.parent:
        add(f"**Parent**: {task.parent}")
    if task.labels:
        add(f"**Labels**: {', '.join(task.labels)}")
    if task.requires:
        add(f"**Requires**: {', '.join(task.requires)}")

    if task.description:
        add("")
        add("## Description")
        add("")
        out.extend(_description_line(line) for line in task.description.split("\n"))

    add("")
    add("## Timeline")
    add("")
    add(f"- **Created**: {iso(task.created_at)}")
    for label, value in (
        ("Assigned", task.assigned_at),
        ("Started", task.started_at),
        ("Last Updated", task.updated_at),
        ("Completed", task.completed_at),
    ):
        if value is not None:
            add(f"- **{label}**: {iso(value)}")
    if task.eta is not None:
        add(f"- **ETA**: {iso(task.eta)} (estimated)")

    if task.percent is not None or task.progress_current is not None:
        add("")
        add("## Progress")
        add("")
        if task.progress_current is None:
            add(f"- **Current**: {fmt_number(task.percent or 0.0)}%")
        else:
            pct = task.progress_percent() or 0.0
            pct = pct if abs(pct) < 1e300 else 0.0  # display only; a tiny total must not print inf
            cur = fmt_number(task.progress_current)
            tot = fmt_number(task.progress_total) if task.progress_total is not None else "?"
            unit = escape_line(task.progress_unit).replace(")", "\\x29")
            add(f"- **Current**: {pct:.0f}% ({cur}/{tot}{' ' + unit if unit else ''})")
            if task.percent is not None:  # reported as a percentage after steps were counted
                add(f"- **Percent**: {fmt_number(task.percent)}")
        if task.started_at is not None:
            end = task.completed_at if task.completed_at is not None else now
            add(f"- **Duration**: {duration(end - task.started_at)}")
        if task.eta is not None and not task.finished:
            add(f"- **Remaining**: ~{duration(task.eta - now)}")

    add("")
    add("## Metrics")
    add("")
    add(json_block(task.metrics))

    if task.context_refs:
        add("")
        add("## Context References")
        add("")
        for label, ref in task.context_refs:
            add(f"- {escape_line(label, backticks=True)}: `{escape_line(ref, backticks=True)}`")

    if task.depends_on:
        add("")
        add("## Dependencies")
        add("")
        for dep in task.depends_on:
            state = task.dep_states.get(dep)
            title = task.dep_titles.get(dep, "")
            mark = _DEP_EMOJI.get(state or "", "⏳")
            tail = f" - {state.upper()}" if state else ""  # a snapshot for people
            name = f"{escape_line(title)} " if title else ""
            add(f"- {mark} {name}({dep}){tail}")

    if task.next_steps:
        add("")
        add("## Next Steps")
        add("")
        add("On completion:")
        add("")
        out.extend(f"1. {escape_line(step)}" for step in task.next_steps)

    for heading, text in (
        ("Blocked", task.blocked_reason),
        ("Result", task.result),
        ("Error", task.error),
    ):
        if text:
            add("")
            add(f"## {heading}")
            add("")
            add(escape_block(text))

    for heading, body in task.extra_sections:
        add("")
        add(f"## {heading}")
        if body:
            add("")
            add(body)

    add("")
    add("## Logs")
    add("")
    add("Recent activity:")
    add("")
    add("```")
    # Newest first, as in the seed. Every line starts with "[", so no line can close the fence.
    out.extend(f"[{stamp(ln.time)}] {escape_line(ln.message)}" for ln in reversed(task.logs))
    add("```")
    add("")
    return "\n".join(out)


def _description_line(line: str) -> str:
    """A line of a description as written: verbatim markdown (check-list items, lists, code
    spans, ``###`` headings) unless it could end the section or read as the title (``#``), open
    a fence, look like a merge conflict or a field line (``**Status**: x``, which the seeds'
    grep recipes would read), hold a control character or a backslash; then escaped like any
    value (:func:`escape_line`, which always leaves a backslash in the line). So a verbatim
    line never holds a backslash, and the parser unescapes every line alike."""
    if (
        line.startswith(("# ", "## "))  # a second title heading, or the section's end
        or line.rstrip() in ("#", "##")
        or "```" in line
        or _FENCE_START.match(line)
        or line.startswith(_CONFLICTS)
        or _FIELD_LIKE.match(line)
        or _UNSAFE.search(line)
    ):
        escaped = escape_line(line)
        return escaped if escaped.startswith("\\") or "\\" in escaped else "\\" + escaped
    return line


def _names(doc: Doc, got: tuple[str, int] | None, what: str) -> list[str]:
    """A comma-separated list of names (``**Labels**``, ``**Requires**``)."""
    if got is None:
        return []
    out = []
    for item in got[0].split(","):
        name = item.strip()
        if not name or name == NONE:
            continue
        if not is_valid_name(name):
            raise doc.corrupt(got[1], f"invalid {what} {name!r}")
        out.append(name)
    return list(dict.fromkeys(out))


def _time(doc: Doc, got: tuple[str, int] | None, name: str) -> float | None:
    if got is None:
        return None
    value, line = got
    value = value.strip()
    if value in (NONE, "", "N/A", "none"):
        return None
    value = value.replace("(estimated)", "").strip()
    try:
        return parse_iso(value)
    except ValueError:
        raise doc.corrupt(line, f"**{name}** is not a timestamp: {value!r}") from None


def parse_task(text: str, path: str) -> Task:
    """Parse a task file; raises :class:`CorruptData` naming the line for anything unreadable."""
    doc = parse_doc(text, path)
    if doc.title is None or not doc.title.lower().startswith("task:"):
        raise doc.corrupt(1, "missing '# Task: <title>' heading")
    title = unescape_line(doc.title[5:].strip())
    tid, tid_line = doc.field("Task ID", required=True) or ("", 0)
    tid = tid.strip()
    if not is_valid_name(tid):
        raise doc.corrupt(tid_line, f"invalid task id {tid!r}")
    status, status_line = doc.field("Status", required=True) or ("", 0)
    status = status.strip().lower().replace(" ", "_").replace("-", "_")
    if status not in TASK_STATES:
        raise doc.corrupt(
            status_line, f"unknown status {status!r} (one of {', '.join(TASK_STATES)})"
        )
    task = Task(tid, title, status=status)

    project = doc.field("Project ID")
    if project and project[0].strip() not in (NONE, ""):
        task.project = project[0].strip()
    agent = doc.field("Assigned Agent")
    if agent and agent[0].strip() not in (NONE, "", "none", "N/A"):
        name = agent[0].strip()
        if not is_valid_name(name):
            raise doc.corrupt(agent[1], f"invalid agent name {name!r}")
        task.agent = name
    for field, attr in (("Priority", "priority"), ("Epoch", "epoch")):
        got = doc.field(field)
        if got is not None:
            setattr(task, attr, parse_int(doc, got[0], got[1], field))
    task.lease_expires = _time(doc, doc.field("Lease Expires"), "Lease Expires")
    for field, attr in (("Lease Duration", "lease_seconds"), ("Grant Lease", "lease_grant")):
        lease = doc.field(field)
        if lease is None:
            continue
        try:
            setattr(task, attr, parse_duration(lease[0]))
        except ValueError:
            raise doc.corrupt(lease[1], f"**{field}** is not a duration: {lease[0]!r}") from None
    attempts = doc.field("Attempts")
    if attempts is not None:
        a, _, m = attempts[0].partition("/")
        task.attempts = parse_int(doc, a, attempts[1], "Attempts")
        if m.strip():
            task.max_attempts = parse_int(doc, m, attempts[1], "Attempts")
    creator = doc.field("Created By")
    if creator is not None and creator[0].strip() not in (NONE, ""):
        task.created_by = creator[0].strip()
    parent = doc.field("Parent")
    if parent is not None and parent[0].strip() not in (NONE, ""):
        name = parent[0].strip()
        if not is_valid_name(name) or name == tid:
            raise doc.corrupt(parent[1], f"invalid parent task id {name!r}")
        task.parent = name
    task.labels = _names(doc, doc.field("Labels"), "label")
    task.requires = _names(doc, doc.field("Requires"), "capability")

    for section in doc.sections:
        _parse_section(doc, section, task)
    return task


def _parse_section(doc: Doc, section: Section, task: Task) -> None:
    heading = section.heading.lower()
    if heading == "timeline":
        f = section.fields()
        created = _time(doc, f.get("created"), "Created")
        task.created_at = created if created is not None else 0.0
        task.assigned_at = _time(doc, f.get("assigned"), "Assigned")
        task.started_at = _time(doc, f.get("started"), "Started")
        task.updated_at = _time(doc, f.get("last updated"), "Last Updated")
        task.completed_at = _time(doc, f.get("completed"), "Completed")
        task.eta = _time(doc, f.get("eta"), "ETA")
    elif heading == "progress":
        _parse_progress(doc, section, task)
    elif heading == "metrics":
        block = section.fenced("json")
        if block is not None:
            start, lines = block
            try:
                data = loads_json("\n".join(lines)) if lines else {}
            except json.JSONDecodeError as exc:
                raise doc.corrupt(start + exc.lineno, f"metrics json: {exc.msg}") from None
            except ValueError as exc:
                raise doc.corrupt(start + 1, f"metrics json: {exc}") from None
            except RecursionError:
                raise doc.corrupt(start + 1, "metrics json is nested too deeply") from None
            if not isinstance(data, dict):
                raise doc.corrupt(start + 1, "metrics json must be an object")
            task.metrics = data
    elif heading == "context references":
        for line in section.body():
            m = _REF.match(line)
            if m is not None:
                task.context_refs.append(
                    (unescape_line(m.group("label")), unescape_line(m.group("ref")))
                )
    elif heading == "dependencies":
        for no, line in section.lines:
            stripped = line.strip()
            if not stripped:
                continue
            m = _DEP_TAIL.search(stripped)
            if m is None or not stripped.startswith("-"):
                raise doc.corrupt(no, "dependency line must be '- ... (task-id)'")
            head = stripped[1 : m.start()].strip()
            mark, _, rest = head.partition(" ")
            # The renderer always writes a mark first; a person may have left it out.
            title = rest.strip() if mark in _MARKS else head
            task.depends_on.append(m.group("id"))
            if title:
                task.dep_titles[m.group("id")] = unescape_line(title)
            state = (m.group("status") or "").strip().lower().replace(" ", "_")
            if state in TASK_STATES:
                task.dep_states[m.group("id")] = state
    elif heading == "next steps":
        for line in section.body():
            m = _STEP.match(line)
            if m is not None:
                task.next_steps.append(unescape_line(m.group(1)))
    elif heading == "description" and not task.description:
        task.description = unescape_block(section.body())
    elif heading in ("result", "error", "blocked"):
        text = unescape_block(section.body()) or None
        attr = {"result": "result", "error": "error", "blocked": "blocked_reason"}[heading]
        setattr(task, attr, text)
    elif heading == "logs":
        block = section.fenced()
        start, lines = block if block else (0, [])
        for no, line in enumerate(lines, start=start + 1):
            m = _LOG.match(line)
            if m is not None:
                try:
                    when = parse_iso(m.group(1))
                except ValueError:
                    raise doc.corrupt(
                        no, f"log line has an impossible time {m.group(1)!r}"
                    ) from None
                task.logs.append(LogLine(when, unescape_line(m.group(2))))
        task.logs.reverse()
    else:
        body = "\n".join(section.body())
        task.extra_sections.append((section.heading, body))


def _parse_progress(doc: Doc, section: Section, task: Task) -> None:
    f = section.fields()
    cur = f.get("current")
    if cur is None:
        return
    m = _PROGRESS.search(cur[0])
    if m is None:
        raise doc.corrupt(cur[1], f"**Current** is not a progress figure: {cur[0]!r}")
    try:
        if m.group("cur") is not None:
            task.progress_current = finite(m.group("cur"))
            tot = m.group("tot")
            task.progress_total = None if tot == "?" else finite(tot)
            task.progress_unit = unescape_line(m.group("unit") or "")
            explicit = f.get("percent")
            if explicit is not None:
                task.percent = finite(explicit[0].rstrip("% "))
        else:
            task.percent = finite(m.group("pct"))
    except ValueError:
        raise doc.corrupt(cur[1], f"**Current** is not a progress figure: {cur[0]!r}") from None
