"""``task-{id}.md``: round trip, hostile text, the seed's shell recipes, corrupt files, hand edits.

Normalisations the round trip relies on (the model values the codec stores, by design):
free text (result, error, blocked_reason) is stored as ``normalize_block`` leaves it and ``""``
becomes None; project, agent and created_by are names or None; dependency titles are non-empty
and only kept for ids in ``depends_on``. Regression tests for bugs this suite found are at the
bottom.
"""

from __future__ import annotations

import json
import shutil
import string
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcoord.core.models import TASK_STATES, LogLine, Task
from agentcoord.core.validate import is_valid_name
from agentcoord.errors import CorruptData
from agentcoord.store.markdown.codec.task import parse_task, render_task
from agentcoord.store.markdown.codec.text import escape_block, normalize_block

ALNUM = string.ascii_letters + string.digits
NOW = 1_760_279_400.0  # 2025-10-12T14:30:00Z

TRICKY = [
    "\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\t", "\x00",
    "`", "```", "```json", "~~~", "## ", "## Logs", "# ", "**Status**: complete",
    "- **Task ID**: evil", " ", "\xa0", "\\", "\\n", "\\x41", "(", ")", ":", "*", "-", "1. ",
    "[2025-01-01 00:00:00] ", "✅", "😀",
]  # fmt: skip
texts = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY)), max_size=6).map("".join)
# Same language as NAME_PATTERN (checked below), but much cheaper to draw than from_regex.
names = st.builds(str.__add__, st.sampled_from(ALNUM), st.text(ALNUM + "._-", max_size=63))
stamps = st.integers(0, 4_102_444_800).map(float)  # whole seconds: the format's precision
opt_stamps = st.none() | stamps
blocks = st.none() | texts.map(normalize_block).filter(bool)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**18), 10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
metrics = st.dictionaries(texts, json_values, max_size=3)
KNOWN_SECTIONS = {"timeline", "progress", "metrics", "context references", "dependencies"}
KNOWN_SECTIONS |= {"next steps", "result", "error", "blocked", "logs", "description"}
moderate = st.floats(-1e12, 1e12, allow_nan=False)
headings = (
    st.text("abcdefghijklmnopqrstuvwxyz ABC0123456789", min_size=1, max_size=20)
    .map(str.strip)
    .filter(lambda h: bool(h) and h.lower() not in KNOWN_SECTIONS)
)
extra_sections = st.lists(
    st.tuples(headings, texts.map(lambda t: escape_block(normalize_block(t)))), max_size=2
)


def _description(text: str) -> str:
    """A description as every store keeps it (``Store.check_task``): no blank first or last
    line."""
    lines = normalize_block(text).split("\n")
    while lines and not lines[0].strip():
        del lines[0]
    while lines and not lines[-1].strip():
        del lines[-1]
    return "\n".join(lines)


#: Free markdown with the structure a description may hold and the text that must not forge
#: any (issue 16): check-list items, headings of every level, fences, conflict markers.
MARKDOWN = [
    "- [ ] ", "- [x] ", "* [X] ", "  - [ ] ", "1. [ ] ", "### ", "## ", "##", "# ", "```",
    "   ~~~", "<<<<<<< ", "=======", ">>>>>>> ", "**Labels**: x", "> quote", "|a|b|", "\n",
]  # fmt: skip
descriptions = (
    st.lists(st.one_of(texts, st.sampled_from(MARKDOWN)), max_size=8).map("".join).map(_description)
)


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    deps = draw(st.lists(names, unique=True, max_size=3))
    task_id = draw(names)
    task = Task(
        task_id,
        draw(texts),
        status=draw(st.sampled_from(TASK_STATES)),
        project=draw(st.none() | names),
        agent=draw(st.none() | names),
        priority=draw(st.integers(-1000, 10**9)),
        depends_on=deps,
        dep_titles={d: t for d in deps if (t := draw(texts))},
        dep_states={d: s for d in deps if (s := draw(st.none() | st.sampled_from(TASK_STATES)))},
        epoch=draw(st.integers(0, 10**9)),
        lease_expires=draw(opt_stamps),
        lease_seconds=draw(st.floats(-1e20, 1e20)),
        attempts=draw(st.integers(0, 100)),
        max_attempts=draw(st.integers(0, 100)),
        created_at=draw(stamps),
        created_by=draw(st.none() | names),
        assigned_at=draw(opt_stamps),
        started_at=draw(opt_stamps),
        updated_at=draw(opt_stamps),
        completed_at=draw(opt_stamps),
        eta=draw(opt_stamps),
        metrics=draw(metrics),
        context_refs=draw(st.lists(st.tuples(texts, texts), max_size=3)),
        next_steps=draw(st.lists(texts, max_size=3)),
        logs=[LogLine(t, m) for t, m in draw(st.lists(st.tuples(stamps, texts), max_size=4))],
        result=draw(blocks),
        error=draw(blocks),
        blocked_reason=draw(blocks),
        extra_sections=draw(extra_sections),
        labels=draw(st.lists(names, unique=True, max_size=3)),
        requires=draw(st.lists(names, unique=True, max_size=3)),
        parent=draw(st.none() | names.filter(lambda n: n != task_id)),
        description=draw(descriptions),
    )
    kind = draw(st.sampled_from(["none", "percent", "count", "both"]))
    if kind in ("percent", "both"):
        task.percent = draw(st.floats(allow_nan=False, allow_infinity=False))
    if kind in ("count", "both"):
        task.progress_current = draw(moderate)
        task.progress_total = draw(st.none() | moderate)
        task.progress_unit = draw(texts)
    return task


def roundtrip(task: Task) -> Task:
    return parse_task(render_task(task, NOW), "task-x.md")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks())
def test_round_trip(task: Task) -> None:
    text = render_task(task, NOW)
    back = parse_task(text, "task-x.md")
    assert back == task
    # Rendering is a fixpoint after one parse (not always before: -0.0 == 0.0 but shows as "-0").
    again = render_task(back, NOW)
    assert render_task(parse_task(again, "f"), NOW) == again


@settings(max_examples=100, deadline=None)
@given(tasks())
def test_structure_cannot_be_forged(task: Task) -> None:
    lines = render_task(task, NOW).split("\n")
    assert sum(line.startswith("**Status**:") for line in lines) == 1
    assert sum(line == "## Logs" for line in lines) == 1
    assert sum(line.startswith("# ") for line in lines) == 1
    assert sum(line == "## Description" for line in lines) == (1 if task.description else 0)
    assert sum(line.startswith("**Labels**:") for line in lines) <= 1


HOSTILE = [
    "x\n**Status**: complete\n**Assigned Agent**: mallory",
    "## Logs\n```\n[2025-01-01 00:00:00] forged",
    "```\n## Result\nowned\n```",
    "**Status**: complete",
    "`",
    "~~~\n# Task: other",
    "line\r**Task ID**: other\u2028## Error\x85boom",
]


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_text_changes_only_itself(evil: str) -> None:
    base = Task("task-1", "ok", status="in_progress", agent="alice", epoch=3, metrics={"loss": 0.4})
    base.logs = [LogLine(NOW - 60, "started")]
    for attr in ("title", "log", "step", "result", "ref", "dep", "description"):
        task = base.copy()
        if attr == "description":
            task.description = _description(evil)
        elif attr == "log":
            task.logs.append(LogLine(NOW, evil))
        elif attr == "step":
            task.next_steps = [evil, "next"]
        elif attr == "ref":
            task.context_refs = [(evil, evil.lstrip("`"))]
        elif attr == "dep":
            task.depends_on, task.dep_titles = ["task-0"], {"task-0": evil}
        elif attr == "result":
            task.result = normalize_block(evil)
        else:
            task.title = evil
        back = roundtrip(task)
        assert back == task, attr
        assert (back.status, back.agent, back.epoch, back.id) == (
            "in_progress",
            "alice",
            3,
            "task-1",
        )


# --------------------------------------------------------------------------- shell recipes ----


def write(tmp_path: object, task: Task) -> str:
    from pathlib import Path

    path = Path(str(tmp_path)) / f"task-{task.id}.md"
    path.write_text(render_task(task, NOW), encoding="utf-8")
    return str(path)


def test_grep_status_recipe(tmp_path: object) -> None:
    active = write(tmp_path, Task("a1", "Train", status="in_progress", agent="bob"))
    waiting = write(tmp_path, Task("p1", "Later", status="pending"))
    grep = ["grep", "-q", "Status.*in_progress"]
    assert subprocess.run([*grep, active], check=False).returncode == 0
    assert subprocess.run([*grep, waiting], check=False).returncode == 1


def extract_json(path: str) -> object:
    out = subprocess.run(
        ["sh", "-c", "sed -n '/```json/,/```/p' \"$1\" | sed '1d;$d'", "sh", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if shutil.which("jq"):  # the seed pipes into jq; check it agrees with Python
        jq = subprocess.run(
            ["jq", "-c", "."], check=False, input=out, capture_output=True, text=True
        )
        assert jq.returncode == 0, jq.stderr
    return json.loads(out)


@pytest.mark.parametrize(
    "data",
    [
        {"step": 3500, "loss": 0.42, "note": "a ``` fence", "x": "```json\n```"},
        {"nested": {"k": ["`", "``", "```"]}, "unicode": "😀\u2028", "neg": -0.0},
        {},
    ],
)
def test_sed_json_recipe(tmp_path: object, data: dict[str, object]) -> None:
    task = Task("m1", "Metrics", metrics=data, logs=[LogLine(NOW, "```")])
    task.next_steps = ["run ``` later"]
    assert extract_json(write(tmp_path, task)) == data


@settings(max_examples=20, deadline=None)
@given(metrics)
def test_sed_json_recipe_property(tmp_path_factory: pytest.TempPathFactory, data: dict) -> None:
    path = write(tmp_path_factory.mktemp("m"), Task("m1", "Metrics", metrics=data))
    assert extract_json(path) == data


# --------------------------------------------------------------------------- corrupt files ----

GOOD = render_task(
    Task("t1", "T", status="in_progress", agent="bob", created_at=NOW, metrics={"a": 1}), NOW
)


def line_of(text: str, prefix: str) -> int:
    return next(i for i, ln in enumerate(text.split("\n"), 1) if ln.lstrip().startswith(prefix))


@pytest.mark.parametrize(
    ("old", "new", "at", "reason"),
    [
        ("**Status**: in_progress", "**Status**: running", "**Status**", "unknown status"),
        ("- **Created**: 2025", "- **Created**: yesterday 2025", "- **Created**", "timestamp"),
        ('"a": 1', '"a": 1,,', '"a"', "metrics json"),
        ("**Task ID**: t1\n", "", "# Task", "Task ID"),
        ("**Task ID**: t1", "**Task ID**: ../etc", "**Task ID**", "invalid task id"),
        ("**Epoch**: 0", "**Epoch**: zero", "**Epoch**", "whole number"),
        ("# Task: T", "# Tusk: T", "# Tusk", "heading"),
    ],
)
def test_corrupt_files_name_the_line(old: str, new: str, at: str, reason: str) -> None:
    assert old in GOOD
    bad = GOOD.replace(old, new, 1)
    with pytest.raises(CorruptData) as info:
        parse_task(bad, "task-t1.md")
    assert info.value.line == line_of(bad, at)
    assert reason in info.value.reason
    assert info.value.path == "task-t1.md"


def test_metrics_must_be_an_object() -> None:
    with pytest.raises(CorruptData, match="object"):
        parse_task(GOOD.replace('{\n  "a": 1\n}', "[1]"), "f")


def check_parse_or_corrupt(text: str) -> None:
    try:
        task = parse_task(text, "f")
    except CorruptData:
        return
    assert isinstance(task, Task)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_only_raises_corrupt(text: str) -> None:
    check_parse_or_corrupt(text)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(max_size=40))
def test_arbitrary_text_after_a_valid_header(tail: str, title: str) -> None:
    check_parse_or_corrupt(f"# Task: {title}\n\n**Task ID**: t1\n**Status**: pending\n{tail}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks(), st.data())
def test_mutated_files_only_raise_corrupt(task: Task, data: st.DataObject) -> None:
    lines = render_task(task, NOW).split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "insert", "cut"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, data.draw(texts))
        else:
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    check_parse_or_corrupt("\n".join(lines))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tasks(), st.data())
def test_invalid_utf8_is_corrupt_or_parses(task: Task, data: st.DataObject) -> None:
    raw = bytearray(render_task(task, NOW).encode("utf-8"))
    for _ in range(data.draw(st.integers(1, 5))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0x80, 0xFF))
    check_parse_or_corrupt(raw.decode("utf-8", errors="replace"))


# --------------------------------------------------------------------------- hand edits -------


@pytest.mark.parametrize(
    "written", ["in_progress", "IN_PROGRESS", "In Progress", "in-progress", "  in_progress   "]
)
def test_status_spelling_is_tolerated(written: str) -> None:
    text = GOOD.replace("**Status**: in_progress", f"**Status**:{written}")
    assert parse_task(text, "f").status == "in_progress"


def test_hand_edits_survive_a_rewrite() -> None:
    task = Task("t1", "T", status="in_progress", created_at=NOW, updated_at=NOW)
    text = render_task(task, NOW)
    text = text.replace(
        "- **Last Updated**: 2025-10-12T14:30:00Z", "- **Last Updated**:  2025-10-12 15:00"
    )
    text = text.replace("**Priority**: 0", "**Priority**:   7  ")
    text = text.replace("## Logs", "## My Notes\n\nremember: check `gpu`\n- item\n\n## Logs")
    edited = parse_task(text, "f")
    assert edited.updated_at == NOW + 1800
    assert edited.priority == 7
    assert edited.extra_sections == [("My Notes", "remember: check `gpu`\n- item")]
    again = parse_task(render_task(edited, NOW), "f")
    assert again == edited
    assert "## My Notes\n\nremember: check `gpu`\n- item\n" in render_task(again, NOW)


def test_crlf_file_is_read() -> None:
    task = parse_task(GOOD.replace("\n", "\r\n"), "f")
    assert (task.id, task.status, task.agent) == ("t1", "in_progress", "bob")


def test_seed_example_parses() -> None:
    seed = (
        "# Task: Train model on Alice dataset\n\n**Task ID**: task-123\n**Project ID**: proj-1\n"
        "**Status**: in_progress\n**Assigned Agent**: ai-engineer\n\n## Timeline\n\n"
        "- **Created**: 2025-10-12T09:55:00Z\n- **ETA**: 2025-10-12T18:30:00Z (estimated)\n\n"
        "## Progress\n\n- **Current**: 35% (3500/10000 steps)\n- **Duration**: 4h 30m\n\n"
        '## Metrics\n\n```json\n{\n  "step": 3500\n}\n```\n\n## Dependencies\n\n'
        "- ✅ Dataset processing (task-122) - COMPLETE\n\n## Logs\n\nRecent activity:\n\n```\n"
        "[2025-10-12 14:30:00] Checkpoint saved at step 3500\n"
        "[2025-10-12 14:20:00] Loss: 0.42\n```\n"
    )
    task = parse_task(seed, "f")
    assert (task.id, task.project, task.agent, task.status) == (
        "task-123", "proj-1", "ai-engineer", "in_progress",
    )  # fmt: skip
    assert (task.progress_current, task.progress_total, task.progress_unit) == (
        3500, 10000, "steps",
    )  # fmt: skip
    assert task.depends_on == ["task-122"]
    assert task.dep_states == {"task-122": "complete"}
    assert [ln.message for ln in task.logs] == ["Loss: 0.42", "Checkpoint saved at step 3500"]


# --------------------------------------------------------------------------- regressions ------
# Bugs this suite found in the codec, each pinned by its minimal example.


@pytest.mark.parametrize("seconds", [1e-05, 1e16, -1.0])
def test_regression_lease_seconds_exponent_or_negative(seconds: float) -> None:
    task = Task("t1", "T", lease_seconds=seconds)
    assert roundtrip(task) == task


@pytest.mark.parametrize(
    "kw",
    [
        {"percent": 50.0, "progress_current": 5.0, "progress_total": 10.0},
        {"progress_current": 5.0, "progress_total": 0.0},
        {"progress_current": 5.0, "progress_unit": "steps"},
        {"progress_current": 5.0, "progress_total": 10.0, "progress_unit": ""},
        {"progress_current": 5.0, "progress_total": 10.0, "progress_unit": "a)b"},
    ],
)
def test_regression_progress_loses_fields(kw: dict[str, object]) -> None:
    task = Task("t1", "T", **kw)  # type: ignore[arg-type]
    assert roundtrip(task) == task


@pytest.mark.parametrize("ref", [("doc", "`x"), ("a: `b", "r")])
def test_regression_context_ref_backticks(ref: tuple[str, str]) -> None:
    task = Task("t1", "T", context_refs=[ref])
    assert roundtrip(task) == task


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("```\n```", "```\n[2025-13-01 00:00:00] bad month\n```"),
        GOOD.replace('{\n  "a": 1\n}', "[" * 100_000 + "]" * 100_000),
    ],
    ids=["log-date", "deep-json"],
)
def test_regression_other_exceptions_escape(text: str) -> None:
    with pytest.raises(CorruptData):
        parse_task(text, "f")


@pytest.mark.parametrize("where", ["title", "log", "step"])
def test_regression_sed_recipe_fooled_by_user_text(tmp_path: object, where: str) -> None:
    task = Task("m1", "T", metrics={"a": 1})
    if where == "title":
        task.title = "see ```json"
    elif where == "log":
        task.logs = [LogLine(NOW, "see ```json")]
    else:
        task.next_steps = ["see ```json"]
    assert extract_json(write(tmp_path, task)) == {"a": 1}


def test_anchored_status_grep_is_not_fooled_by_title(tmp_path: object) -> None:
    # The seed's loose `grep "Status.*in_progress"` also matches those words in a title (as it
    # would on the seed's own files); the anchored form documented in docs/file-formats.md only
    # matches the field.
    path = write(tmp_path, Task("p1", "**Status**: in_progress", status="pending"))
    anchored = ["grep", "-q", r"^\*\*Status\*\*: in_progress", path]
    assert subprocess.run(anchored, check=False).returncode == 1
    active = write(tmp_path, Task("p2", "T", status="in_progress"))
    assert subprocess.run([*anchored[:-1], active], check=False).returncode == 0


@settings(max_examples=100, deadline=None)
@given(names)
def test_name_strategy_draws_valid_names(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.timeout(60)  # quadratic matching took minutes on this input; linear takes ms
def test_regression_dependency_line_with_long_space_run_is_linear() -> None:
    text = GOOD.replace("## Logs", "## Dependencies\n\n- x a" + " " * 200_000 + "b (d1)\n\n## Logs")
    task = parse_task(text, "f")
    assert task.depends_on == ["d1"]


@pytest.mark.parametrize(
    "lines",
    [
        ["## Progress", "", "**Current**: 1e999%"],
        ["## Progress", "", "**Current**: 50% (1/1e999 steps)"],
        ["## Progress", "", "**Current**: 5% (5/10 steps)", "**Percent**: inf%"],
        ["## Metrics", "", "```json", '{"loss": NaN}', "```"],
        ["## Metrics", "", "```json", '{"loss": 1e999}', "```"],
        ["## Metrics", "", "```json", '{"loss": -Infinity}', "```"],
    ],
    ids=["percent", "total", "explicit", "nan", "overflow", "infinity"],
)
def test_non_finite_numbers_are_corrupt_not_data(lines: list[str]) -> None:
    """No record may hold an infinity or NaN (JSON has none; a lease would overflow): a file
    that spells one is reported with its line, never parsed into a task that cannot be written
    back (found by the fuzzer: ``**Current**: 1e999%``)."""
    text = "\n".join(["# Task: x", "", "**Task ID**: x", "**Status**: pending", "", *lines, ""])
    with pytest.raises(CorruptData):
        parse_task(text, "task-x.md")


@pytest.mark.parametrize("value", ["1e999s", "1e400m", "inf", "nan"])
def test_a_lease_duration_must_be_finite(value: str) -> None:
    text = f"# Task: x\n\n**Task ID**: x\n**Status**: pending\n**Lease Duration**: {value}\n"
    with pytest.raises(CorruptData):
        parse_task(text, "task-x.md")


def test_description_is_markdown_in_its_own_section() -> None:
    """Issue 16: check-list items and ordinary markdown are written as they are (people and
    ``grep -c '^- \\[x\\]'`` read them); only what could end the section or open a fence is
    escaped, and it all reads back."""
    description = (
        "Ship it.\n\n### Acceptance\n- [ ] tests pass\n- [x] docs\n  - [ ] nested `code`\n"
        "## Logs\n```\n~~~\n<<<<<<< ours\nback\\slash\ttab"
    )
    task = Task("t1", "x", description=description, labels=["ui", "p1"], requires=["gpu"])
    task.parent = "epic"
    text = render_task(task, NOW)
    assert "\n## Description\n\nShip it.\n\n### Acceptance\n- [ ] tests pass\n- [x] docs\n" in text
    assert "\n  - [ ] nested `code`\n" in text
    assert "\n## Logs\n" not in text.split("## Timeline")[0]  # the forged heading is escaped
    assert "**Labels**: ui, p1\n**Requires**: gpu\n" in text and "**Parent**: epic\n" in text
    back = parse_task(text, "task-t1.md")
    assert (back.description, back.labels, back.requires, back.parent) == (
        description,
        ["ui", "p1"],
        ["gpu"],
        "epic",
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("Labels", "ok, not/a/name", "invalid label"),
        ("Requires", "../gpu", "invalid capability"),
        ("Parent", "t1", "invalid parent"),
        ("Parent", "a b", "invalid parent"),
    ],
)
def test_bad_lifecycle_fields_are_corrupt(field: str, value: str, reason: str) -> None:
    text = render_task(Task("t1", "x"), NOW).replace(
        "**Attempts**:", f"**{field}**: {value}\n**Attempts**:"
    )
    with pytest.raises(CorruptData, match=reason):
        parse_task(text, "task-t1.md")
