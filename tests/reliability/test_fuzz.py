"""Hostile content: the markdown parsers under arbitrary bytes, invalid UTF-8, huge lines, deep
nesting and forged fields. Each parser returns a model or raises :class:`CorruptData` -- never
another exception -- within a bounded CPU time; a model it returns can be written back (the
write path of every update) and read again.

Sizes: ``COORD_FUZZ_EXAMPLES`` hypothesis examples per strategy and parser (default 150).
The atheris harness (``fuzz_atheris.py``) runs when atheris is installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcoord.core.models import Agent, ContextDoc, Event, LogLine, Task
from agentcoord.errors import CorruptData
from agentcoord.store.markdown.codec.agent import parse_agent, render_agent
from agentcoord.store.markdown.codec.context import parse_context, render_context
from agentcoord.store.markdown.codec.event import parse_events, render_events
from agentcoord.store.markdown.codec.task import parse_task, render_task

from .invariants import REPO, report

EXAMPLES = int(os.environ.get("COORD_FUZZ_EXAMPLES", "150"))
#: CPU seconds one parse may take before it counts as a hang (a 1 MB file parses in ~0.1 s).
HANG = 10.0
T0 = 1_760_000_000.0


class Hang(Exception):
    pass


@contextmanager
def cpu_bound(seconds: float = HANG) -> Iterator[None]:
    """Raise :class:`Hang` after ``seconds`` of CPU time (SIGVTALRM: pytest-timeout keeps
    SIGALRM; regex matching checks for signals, so a backtracking regex is interrupted too)."""

    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"still parsing after {seconds:g} CPU seconds")

    old = signal.signal(signal.SIGVTALRM, fire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)


# -- the four formats: a valid sample of each, its parser and its renderer ---------------------
SAMPLE_TASK = Task(
    "t1",
    "Train model",
    status="in_progress",
    project="p1",
    agent="a1",
    epoch=2,
    lease_expires=T0 + 600,
    attempts=1,
    created_at=T0,
    assigned_at=T0,
    started_at=T0,
    updated_at=T0,
    depends_on=["d1"],
    dep_titles={"d1": "dep"},
    dep_states={"d1": "complete"},
    progress_current=3.0,
    progress_total=10.0,
    metrics={"loss": 0.42, "nested": {"a": [1, 2]}},
    context_refs=[("Dataset", "context-p1-data.md")],
    next_steps=["save"],
    logs=[LogLine(T0, "claimed by a1 (epoch 2)"), LogLine(T0 + 1, "hello")],
    result="ok",
    blocked_reason="none",
)
SAMPLE_AGENT = Agent(
    "a1",
    status="busy",
    registered_at=T0,
    last_seen=T0,
    workload=85,
    capabilities=["python"],
    notes="at capacity",
    active=[
        {
            "id": "t1",
            "title": "Train",
            "project": "p1",
            "status": "in_progress",
            "started": T0,
            "percent": 35.0,
            "current": 3.0,
            "total": 10.0,
            "unit": "steps",
            "metrics": {"loss": 0.42},
            "updated": T0,
        }
    ],
    recent=[{"id": "t0", "title": "Prep", "completed": T0, "duration": 5, "success": True}],
    stats={
        "success_rate": 100.0,
        "succeeded": 1,
        "finished": 1,
        "failed": 0,
        "average_duration": 5,
    },
)
SAMPLE_EVENTS = [
    Event("ch", "tick", seq=i, time=T0 + i, fields=[("Step", str(i)), ("Loss", "0.4")])
    for i in range(1, 4)
]
SAMPLE_CONTEXT = ContextDoc(
    "p1", "data", data={"rows": [1, 2], "name": "x"}, title="Data", text="notes", updated_at=T0
)


def _events_text(log: Any) -> str:
    return render_events("ch", log.events, last_seq=log.last_seq, updated=T0, archive=log.archive)


#: name -> (sample text, parse, write back what was parsed)
FORMATS: dict[str, tuple[str, Callable[[str], Any], Callable[[Any], str]]] = {
    "task": (
        render_task(SAMPLE_TASK, T0),
        lambda text: parse_task(text, "/ws/task-t1.md"),
        lambda task: render_task(task, T0),
    ),
    "agent": (
        render_agent(SAMPLE_AGENT, T0),
        lambda text: parse_agent(text, "/ws/agent-a1.md"),
        lambda agent: render_agent(agent, T0),
    ),
    "events": (
        render_events("ch", SAMPLE_EVENTS, last_seq=3, updated=T0),
        lambda text: parse_events(text, "/ws/events-ch.md", "ch"),
        _events_text,
    ),
    "context": (
        render_context(SAMPLE_CONTEXT),
        lambda text: parse_context(text, "/ws/context-p1-data.md"),
        render_context,
    ),
}


#: Bugs this suite found that are not fixed yet: (format, exception) -> the strict-xfail test
#: that shows it. Tolerated (and counted) here so that the rest keeps fuzzing; remove the entry
#: with the fix (the xfail test then fails until its marker goes too).
KNOWN_BUGS: dict[tuple[str, type[BaseException]], str] = {}


def survive(fmt: str, text: str) -> str:
    """Parse ``text`` as ``fmt``: a model (written back and read again) or CorruptData.
    Returns which of the two happened; anything else fails the test."""
    _, parse, render = FORMATS[fmt]
    with cpu_bound():
        try:
            model = parse(text)
        except CorruptData as exc:
            error = exc
        except tuple(t for f, t in KNOWN_BUGS if f == fmt):
            return "known_bug"
        else:
            again = render(model)  # what every update does with a record it read
            parse(again)  # what it wrote reads back
            return "model"
    assert error.line >= 1 and error.path.startswith("/ws/"), error
    return "corrupt"


# -- hypothesis strategies ---------------------------------------------------------------------
FIELDS = [
    "Task ID", "Project ID", "Status", "Assigned Agent", "Priority", "Epoch", "Lease Expires",
    "Lease Duration", "Attempts", "Created By", "Created", "Assigned", "Started", "Last Updated",
    "Completed", "ETA", "Current", "Seq", "Time", "Last Seq", "Workload", "Registered",
    "Capabilities", "Project", "Domain", "State", "Failure Count", "Last Failure", "Success Rate",
    "Average Duration", "Total Tasks (24h)", "Failed Tasks", "Duration", "Progress", "Metrics",
    "Success", "Opened", "Threshold",
]  # fmt: skip
HEADINGS = [
    "Timeline", "Progress", "Metrics", "Context References", "Dependencies", "Next Steps",
    "Blocked", "Result", "Error", "Logs", "Active Tasks", "Recent Completions (Last 24h)",
    "Circuit Breaker", "Notes", "Data", "Event: tick", "Event: ", "Event: ../x", "Event: a b",
]  # fmt: skip
NASTY = [
    "", "-", "N/A", "none", "pending", "In Progress", "COMPLETE", "0", "-1", "007", "1e999",
    "1e308", "-1e308", "nan", "inf", "9" * 5000, "0.0000001", "1/0", "3/", "/3", "-1/-1",
    "100%", "101%", "-5%", "1e999%", "35% (3500/0 steps)", "35% (1e999/1e999)", "50% (1/2 )",
    "2025-13-40T25:61:61Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59", "2025-01-01 00:00", "99999999999d", "1e999s", "10m 5s 3h",
    "CLOSED", "open", "half_open", "✅", "❌", "`x`", "\\", "\\x", "\\u12", "\\U0010ffff",
    "\\x00\\n", "**", "*", "a:b", "(t1)", "[2025-01-01 00:00:00]", "\x00", "\x85", "\u2028",
    "\ud7ff", "\ufeff", "\u202e", "😀" * 50,
]  # fmt: skip


def _json(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    )
    tree = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=depth,
    )
    return st.one_of(tree.map(json.dumps), st.sampled_from(["{", "[" * 50000, "{}}", "1e999"]))


VALUES = st.one_of(st.sampled_from(NASTY), st.text(max_size=60))
LINES = st.one_of(
    st.builds(lambda f, v: f"**{f}**: {v}", st.sampled_from(FIELDS), VALUES),
    st.builds(lambda f, v: f"- **{f}**: {v}", st.sampled_from(FIELDS), VALUES),
    st.builds(lambda f, v: f"  - {f}: {v}", st.sampled_from(FIELDS), VALUES),
    st.builds(lambda h: f"## {h}", st.sampled_from(HEADINGS)),
    st.builds(lambda h: f"### Task: {h}", VALUES),
    st.builds(lambda v: f"- **{v}** ({v})", VALUES),
    st.builds(lambda v: f"- ✅ {v} (t{v}) - COMPLETE", VALUES),
    st.builds(lambda v: f"[2025-01-01 00:00:00] {v}", VALUES),
    st.builds(lambda v: f"1. {v}", VALUES),
    st.sampled_from(["```json", "```", "~~~", "````", "---", "", "# Task: x", "# Agent: a1",
                     "# X Events Log", "_Note: Older events are in `archive/x.md`_"]),
    _json(20),
    st.text(max_size=80),
)  # fmt: skip


@st.composite
def spliced(draw: st.DrawFn, fmt: str) -> str:
    """A valid file of ``fmt`` with lines replaced, inserted, deleted or repeated."""
    lines = FORMATS[fmt][0].split("\n")
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(lines)))
        how = draw(st.sampled_from(("insert", "replace", "delete", "repeat", "truncate")))
        if how == "insert":
            lines.insert(pos, draw(LINES))
        elif how == "replace" and pos < len(lines):
            lines[pos] = draw(LINES)
        elif how == "delete" and pos < len(lines):
            del lines[pos]
        elif how == "repeat" and pos < len(lines):
            lines[pos:pos] = [lines[pos]] * draw(st.integers(1, 50))
        elif how == "truncate":  # a write cut short (what atomic replace prevents)
            text = "\n".join(lines)
            return text[: draw(st.integers(0, len(text)))]
    return "\n".join(lines)


def _header(fmt: str) -> list[str]:
    """The sample's title and header fields (everything before its first section)."""
    lines = FORMATS[fmt][0].split("\n")
    return lines[: next(i for i, ln in enumerate(lines) if ln.startswith("## "))]


STRATEGIES: dict[str, Callable[[str], st.SearchStrategy[str]]] = {
    "bytes": lambda fmt: st.binary(max_size=3000).map(lambda b: b.decode("utf-8", "replace")),
    "text": lambda fmt: st.text(max_size=2000),
    "lines": lambda fmt: st.lists(LINES, max_size=40).map(
        lambda body: "\n".join([*_header(fmt), *body])
    ),
    "spliced": spliced,
}
SETTINGS = settings(
    max_examples=EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_parsers_return_a_model_or_corrupt_data(fmt: str, strategy: str) -> None:
    outcomes = {"model": 0, "corrupt": 0, "known_bug": 0}

    @SETTINGS
    @given(STRATEGIES[strategy](fmt))
    def one(text: str) -> None:
        outcomes[survive(fmt, text)] += 1

    one()
    report("fuzz", cases=sum(outcomes.values()), fmt=fmt, strategy=strategy, **outcomes)


# -- huge lines and deep nesting ----------------------------------------------------------------
SIZE = 1_000_000
HUGE = {
    "spaces": lambda n: " " * n + "x",
    "field_spaces": lambda n: "**Status**: " + " " * n + "x",
    "item_spaces": lambda n: "- **Current**: " + " " * n + "x",
    "stars": lambda n: "*" * n,
    "open_field": lambda n: "**a" + "*" * n,
    "dashes": lambda n: "- " * (n // 2),
    "backticks": lambda n: "`" * n,
    "hashes": lambda n: "#" * n,
    "digits": lambda n: "1" * n,
    "dependency": lambda n: "- ✅ " + " " * n + "(",
    "dependency_words": lambda n: "- " + "a " * (n // 2) + "(x",
    "progress": lambda n: "- **Current**: 35% (" + "1" * n,
    "progress_dots": lambda n: "- **Current**: " + "1." * (n // 2),
    "log_stamps": lambda n: "[" + "2025-01-01 00:00:00 " * (n // 20),
    "backslashes": lambda n: "\\" * n,
    "escapes": lambda n: "\\x" * (n // 2),
    "tabs": lambda n: "\t" * n + "x",
    "colons": lambda n: "**" + "a:" * (n // 2),
    "durations": lambda n: "**Lease Duration**: " + "1 " * (n // 2) + "x",
    "timestamp": lambda n: "**Lease Expires**: 2025-01-01T00:00" + " " * n + "x",
    "steps": lambda n: "1. " + " " * n + "x",
    "reference": lambda n: "- a: `" + "`" * n,
    "note": lambda n: "_Note: " + " " * n + "Older events are in `",
    "invalid_utf8": lambda n: (b"\xff\xfe\xc3(" * (n // 4)).decode("utf-8", "replace"),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_huge_lines_parse_in_bounded_time(fmt: str) -> None:
    lines = FORMATS[fmt][0].split("\n")
    cases = 0
    for make in HUGE.values():
        line = make(SIZE)
        for pos in (0, 2, len(lines) // 2, len(lines) - 3):
            survive(fmt, "\n".join([*lines[:pos], line, *lines[pos:]]))
            cases += 1
    report("fuzz", cases=cases, fmt=fmt, strategy="huge_lines")


NESTED = {
    "json_arrays": "```json\n" + "[" * 200_000 + "]" * 200_000 + "\n```",
    "json_objects": "```json\n" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n```",
    "json_open": "```json\n" + "[" * 200_000 + "\n```",
    "lists": "\n".join("  " * i + "- **Task ID**: x" for i in range(5000)),
    "quotes": "> " * 100_000 + "**Status**: x",
    "headings": "\n".join(f"## Event: e{i}" for i in range(20_000)),
    "sections": "\n".join("## Metrics\n```json\n{}\n```" for _ in range(5_000)),
    "fences": "```\n" * 100_000,
    "fields": "\n".join(f"**Field{i}**: {i}" for i in range(50_000)),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_deep_nesting_and_many_parts(fmt: str) -> None:
    lines = FORMATS[fmt][0].split("\n")
    cases = 0
    for block in NESTED.values():
        for section in ("Metrics", "Data", None):
            where = next(
                (i + 1 for i, ln in enumerate(lines) if section and ln == f"## {section}"),
                len(lines) - 2,
            )
            survive(fmt, "\n".join([*lines[:where], block, *lines[where:]]))
            cases += 1
    report("fuzz", cases=cases, fmt=fmt, strategy="nesting")


def test_context_file_with_deeply_nested_json_is_corrupt_data() -> None:
    text = FORMATS["context"][0].replace(
        '"rows"', '"deep": ' + "[" * 100_000 + "]" * 100_000 + ', "rows"'
    )
    with pytest.raises(CorruptData):
        parse_context(text, "/ws/context-p1-data.md")


@pytest.mark.parametrize("what", ["context", "metrics"])
def test_deeply_nested_data_through_the_api_is_invalid_input(tmp_path: Path, what: str) -> None:
    from agentcoord.api import Coordinator
    from agentcoord.errors import InvalidInput
    from agentcoord.workspace import init_workspace

    ws, _ = init_workspace(str(tmp_path / "coord"))
    coord = Coordinator.open(ws.root)
    deep: Any = 1
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidInput):
        if what == "context":
            coord.contexts.put("p", "d", {"a": deep})
        else:
            coord.tasks.create("x", metrics={"a": deep})


# -- forged fields: user text can never change what a record says ------------------------------
HOSTILE = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from([*NASTY, "\n", "\r\n", "## Status", "**Status**: complete",
                              "**Seq**: 999", "## Event: forged", "```", "\n# Task: fake\n"]),
             max_size=12).map("".join),
)  # fmt: skip


@SETTINGS
@given(title=HOSTILE, message=HOSTILE, result=HOSTILE, ref=HOSTILE, step=HOSTILE)
def test_hostile_task_text_cannot_forge_fields(
    title: str, message: str, result: str, ref: str, step: str
) -> None:
    task = SAMPLE_TASK.copy()
    task.title, task.result, task.error = title.replace("\n", " ").strip() or "t", result, result
    task.logs.append(LogLine(T0 + 2, message))
    task.context_refs.append((ref, ref))
    task.next_steps.append(step)
    back = parse_task(render_task(task, T0), "/ws/task-t1.md")
    assert (back.id, back.status, back.agent, back.epoch, back.lease_expires) == (
        "t1",
        "in_progress",
        "a1",
        2,
        T0 + 600,
    )
    assert back.depends_on == ["d1"] and back.logs[-1].message == message


@SETTINGS
@given(key=HOSTILE, value=HOSTILE)
def test_hostile_event_fields_cannot_forge_events(key: str, value: str) -> None:
    key = key.replace("\n", " ").strip() or "k"
    events = [*SAMPLE_EVENTS, Event("ch", "tick", seq=4, time=T0 + 4, fields=[(key, value)])]
    log = parse_events(render_events("ch", events, last_seq=4, updated=T0), "/ws/e.md", "ch")
    assert [e.seq for e in log.events] == [1, 2, 3, 4] and log.last_seq == 4
    assert log.events[-1].fields == [(key, value)]


# -- through the store: invalid UTF-8 on disk, file-name mismatch -----------------------------
def test_store_reads_arbitrary_bytes(tmp_path: Path) -> None:
    from agentcoord.store.markdown.store import MarkdownStore

    store = MarkdownStore(str(tmp_path), durable=False)
    path = tmp_path / "task-t1.md"
    sample = FORMATS["task"][0].encode()
    seen = {"model": 0, "corrupt": 0}

    @SETTINGS
    @given(st.one_of(st.binary(max_size=2000), st.binary(max_size=200).map(lambda b: sample + b)))
    def one(raw: bytes) -> None:
        path.write_bytes(raw)
        with cpu_bound():
            try:
                store.get_task("t1")
                seen["model"] += 1
            except CorruptData as exc:
                seen["corrupt"] += 1
                where = exc.path
            else:
                where = str(path)
            errors: list[CorruptData] = []
            store.list_tasks(errors=errors)  # a listing skips and reports, never raises
        assert where == str(path)
        assert path.read_bytes() == raw  # a read never rewrites what it cannot parse

    one()
    report("fuzz", cases=sum(seen.values()), fmt="task", strategy="store_bytes", **seen)


# -- atheris (coverage-guided), when it is installed --------------------------------------------
ATHERIS_RUNS = int(os.environ.get("COORD_ATHERIS_RUNS", "20000"))


def test_atheris_harness() -> None:
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("fuzz_atheris.py")),
            f"-runs={ATHERIS_RUNS}",
            "-max_len=4096",
            "-timeout=20",
            "-rss_limit_mb=1024",
            "-print_final_stats=1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done" in proc.stderr, proc.stderr[-2000:]
    report("fuzz", cases=ATHERIS_RUNS, fmt="all", strategy="atheris")
