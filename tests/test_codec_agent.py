"""``agent-{name}.md``: round trip, hostile text, the seed's shell recipes, corrupt files, hand edits.

Normalisations the round trip relies on (documented in ``codec/agent.py``): notes are stored as
``normalize_block`` leaves them; capabilities are non-empty; view dicts carry every key (parse
fills them all); ``stats`` is ``{}`` or complete.
"""

from __future__ import annotations

import string
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcoord.core.models import AGENT_STATES, BREAKER_STATES, TASK_STATES, Agent
from agentcoord.core.validate import is_valid_name
from agentcoord.errors import CorruptData
from agentcoord.store.markdown.codec.agent import parse_agent, render_agent
from agentcoord.store.markdown.codec.text import escape_block, normalize_block

ALNUM = string.ascii_letters + string.digits
NOW = 1_760_279_400.0  # 2025-10-12T14:30:00Z

TRICKY = [
    "\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\t", "\x00",
    "`", "```", "~~~", "## ", "## Notes", "### Task: x (p)", "# ", "**Status**: IDLE",
    "- **Task ID**: evil", "  - Loss: 1", "Workload: 99", "Workload", "**Workload**: 1%",
    " ", "\xa0", "\\", "\\n", "\\x41", "(", ")", "(p)", ":", ": ", "*", "**", ",", "-", "?",
    "✅", "❌", "N/A", "😀", "0.42", "true", "null", '"q"', "[1]", "{}",
]  # fmt: skip
texts = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY)), max_size=6).map("".join)
# Same language as NAME_PATTERN (checked below), but much cheaper to draw than from_regex.
names = st.builds(str.__add__, st.sampled_from(ALNUM), st.text(ALNUM + "._-", max_size=63))
stamps = st.integers(0, 4_102_444_800).map(float)  # whole seconds: the format's precision
opt_stamps = st.none() | stamps
finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**18), 10**18) | finite | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
KNOWN = {"active tasks", "metrics", "circuit breaker", "notes"}
headings = (
    st.text("abcdefghijklmnopqrstuvwxyz ABC0123456789", min_size=1, max_size=20)
    .map(str.strip)
    .filter(lambda h: h.lower() not in KNOWN and not h.lower().startswith("recent completions"))
    .filter(bool)
)
extra_sections = st.lists(
    st.tuples(headings, texts.map(lambda t: escape_block(normalize_block(t)))), max_size=2
)
active_items = st.fixed_dictionaries(
    {
        "id": names,
        "title": texts,
        "project": st.none() | names,
        "status": st.sampled_from(TASK_STATES) | texts,
        "started": opt_stamps,
        "percent": st.none() | finite,
        "current": st.none() | finite,
        "total": st.none() | finite,
        "unit": st.just("steps") | texts,
        "metrics": st.dictionaries(texts, json_values, max_size=3),
    }
)
recent_items = st.fixed_dictionaries(
    {
        "id": names,
        "title": texts,
        "completed": opt_stamps,
        "duration": st.none() | st.integers(0, 10**7).map(float) | finite,
        "success": st.none() | st.booleans(),
    }
)
stats = st.just({}) | st.fixed_dictionaries(
    {
        "success_rate": st.none() | finite,
        "succeeded": st.integers(0, 10**6),
        "finished": st.integers(0, 10**6),
        "average_duration": st.none() | finite,
        "failed": st.integers(0, 10**6),
    }
)


@st.composite
def agents(draw: st.DrawFn) -> Agent:
    return Agent(
        draw(names),
        status=draw(st.sampled_from(AGENT_STATES)),
        registered_at=draw(stamps),
        last_seen=draw(stamps),
        workload=draw(st.integers(0, 100)),
        capabilities=draw(st.lists(texts.filter(bool), max_size=3)),
        notes=draw(texts.map(normalize_block)),
        breaker_state=draw(st.sampled_from(BREAKER_STATES)),
        breaker_failures=draw(st.integers(-5, 1000)),
        breaker_threshold=draw(st.integers(0, 1000)),
        breaker_opened_at=draw(opt_stamps),
        last_failure=draw(opt_stamps),
        last_failure_reason=draw(st.none() | texts),
        active=draw(st.lists(active_items, max_size=3)),
        recent=draw(st.lists(recent_items, max_size=3)),
        stats=draw(stats),
        extra_sections=draw(extra_sections),
    )


def roundtrip(agent: Agent) -> Agent:
    return parse_agent(render_agent(agent, NOW), "agent-x.md")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents())
def test_round_trip(agent: Agent) -> None:
    text = render_agent(agent, NOW)
    back = parse_agent(text, "agent-x.md")
    assert back == agent
    # Rendering is a fixpoint after one parse (not always before: -0.0 == 0.0 but shows as "-0").
    again = render_agent(back, NOW)
    assert render_agent(parse_agent(again, "f"), NOW) == again


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents())
def test_structure_cannot_be_forged(agent: Agent) -> None:
    agent.extra_sections = []  # a person's own sections are verbatim: theirs to break
    lines = render_agent(agent, NOW).split("\n")
    assert [ln for ln in lines if ln.startswith("**Status**:")] == [
        f"**Status**: {agent.status.upper()}"
    ]
    assert sum("Workload" in ln for ln in lines if not ln.startswith("## ")) == 1
    assert sum(ln == "## Notes" for ln in lines) == 1
    assert sum(ln.startswith("### ") for ln in lines) == len(agent.active)
    assert sum(ln.startswith("# ") for ln in lines) == 1


def grep(pattern: str, path: Path) -> str:
    return subprocess.run(
        ["grep", "-oP", pattern, str(path)], check=False, capture_output=True, text=True
    ).stdout


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents())
def test_seed_grep_recipes(tmp_path_factory: pytest.TempPathFactory, agent: Agent) -> None:
    agent.extra_sections = []
    path = tmp_path_factory.mktemp("a") / f"agent-{agent.name}.md"
    path.write_text(render_agent(agent, NOW), encoding="utf-8")
    assert grep(r"Workload.*:\s*\K\d+", path) == f"{agent.workload}\n"
    assert grep(r"^\*\*Workload\*\*:\s*\K\d+", path) == f"{agent.workload}\n"
    assert grep(r"^\*\*Status\*\*:\s*\K\w+", path) == f"{agent.status.upper()}\n"


HOSTILE = [
    "x\n**Status**: IDLE\n**Workload**: 0%",
    "## Notes\nforged\n## Circuit Breaker\n- **State**: OPEN",
    "### Task: evil (p)\n- **Task ID**: evil",
    "Workload: 99%",
    "a: b\n  - Loss: 1",
    "```\n## Metrics\n```",
    "line\r**Status**: OFFLINE\u2028## Active Tasks\x85boom",
    "title) (proj",
    "t (p)",
]


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_text_changes_only_itself(evil: str, tmp_path: Path) -> None:
    base = Agent("alice", status="busy", workload=85, last_seen=NOW, breaker_failures=1)
    item = {"id": "t1", "title": "ok", "project": "p1", "status": "in_progress", "started": NOW}
    item.update(percent=35.0, current=3500.0, total=10000.0, unit="steps", metrics={"loss": 0.4})
    done = {"id": "t0", "title": "ok", "completed": NOW, "duration": 60.0, "success": True}
    base.active, base.recent = [item], [done]
    variants = []
    for where in ("notes", "title", "key", "value", "unit", "recent", "reason", "capability"):
        agent = base.copy()
        active, recent = agent.active[0], agent.recent[0]
        if where == "notes":
            agent.notes = normalize_block(evil)
        elif where == "title":
            active["title"] = evil
        elif where == "key":
            active["metrics"] = {evil: 1, "loss": 0.4}
        elif where == "value":
            active["metrics"]["loss"] = evil
        elif where == "unit":
            active["unit"] = evil
        elif where == "recent":
            recent["title"] = evil
        elif where == "reason":
            agent.last_failure_reason = evil
        else:
            agent.capabilities = [evil, "gpu"]
        variants.append(agent)
    for agent in variants:
        back = roundtrip(agent)
        assert back == agent
        assert (back.status, back.workload, back.breaker_state) == ("busy", 85, "closed")
        assert [a["id"] for a in back.active] == ["t1"]
        path = tmp_path / "agent-alice.md"
        path.write_text(render_agent(agent, NOW), encoding="utf-8")
        assert grep(r"Workload.*:\s*\K\d+", path) == "85\n"


# --------------------------------------------------------------------------- seed & hand edits -

SEED = """# Agent: ai-engineer

**Status**: BUSY
**Last Updated**: 2025-10-12T14:30:00Z
**Workload**: 85%

## Active Tasks

### Task: train-model (proj-1)
- **Task ID**: task-123
- **Started**: 2025-10-12T10:00:00Z
- **Duration**: 4h 30m
- **Status**: in_progress
- **Progress**: 35% (3500/10000 steps)
- **Metrics**:
  - Loss: 0.42
  - Learning Rate: 0.0004
  - Samples/sec: 45.2

### Task: evaluate-checkpoint (proj-3)
- **Task ID**: task-125
- **Started**: 2025-10-12T13:45:00Z
- **Duration**: 45m
- **Status**: in_progress
- **Progress**: 70%

## Recent Completions (Last 24h)

- **tune-hyperparameters** (task-120)
  - Completed: 2025-10-12T09:45:00Z
  - Duration: 2h 15m
  - Success: ✅

- **load-checkpoint** (task-118)
  - Completed: 2025-10-12T07:30:00Z
  - Duration: 5m
  - Success: ❌

## Metrics

- **Success Rate**: 100% (24/24)
- **Average Duration**: 3h 30m
- **Total Tasks (24h)**: 24
- **Failed Tasks**: 0

## Circuit Breaker

- **State**: CLOSED
- **Failure Count**: 0/3
- **Last Failure**: N/A

## Notes

Agent is at high capacity (85%). Consider routing new tasks to other agents if available.
"""


def test_seed_example_parses_and_renders_alike() -> None:
    agent = parse_agent(SEED, "agent-ai-engineer.md")
    assert (agent.name, agent.status, agent.workload) == ("ai-engineer", "busy", 85)
    assert agent.last_seen == NOW
    train, evaluate = agent.active
    assert train == {
        "id": "task-123", "title": "train-model", "project": "proj-1", "status": "in_progress",
        "started": NOW - 4.5 * 3600, "percent": 35.0, "current": 3500.0, "total": 10000.0,
        "unit": "steps", "metrics": {"Loss": 0.42, "Learning Rate": 0.0004, "Samples/sec": 45.2},
    }  # fmt: skip
    assert (evaluate["percent"], evaluate["current"], evaluate["metrics"]) == (70.0, None, {})
    assert [(r["id"], r["duration"], r["success"]) for r in agent.recent] == [
        ("task-120", 8100.0, True),
        ("task-118", 300.0, False),
    ]
    assert agent.stats == {
        "success_rate": 100.0, "succeeded": 24, "finished": 24,
        "average_duration": 12600.0, "failed": 0,
    }  # fmt: skip
    assert (agent.breaker_state, agent.breaker_failures, agent.breaker_threshold) == (
        "closed", 0, 3,
    )  # fmt: skip
    assert agent.notes.startswith("Agent is at high capacity (85%).")
    # Rendering keeps the seed's lines (Registered is ours; Duration is derived from now).
    rendered = render_agent(agent, NOW).split("\n")
    for line in SEED.split("\n"):
        if "Duration**: 4h 30m" not in line and "Duration**: 45m" not in line:
            assert line in rendered


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (("**Status**: BUSY", "**Status**: busy"), ("status", "busy")),
        (("**Status**: BUSY", "**Status**:   Offline  "), ("status", "offline")),
        (("**Workload**: 85%", "**Workload**: 40 %"), ("workload", 40)),
        (("**Workload**: 85%", "**Workload**:40"), ("workload", 40)),
        (
            ("**Last Updated**: 2025-10-12T14:30:00Z", "**Last Updated**: 2025-10-12 15:00"),
            ("last_seen", NOW + 1800),
        ),
        (
            (
                "**Last Updated**: 2025-10-12T14:30:00Z",
                "**Last Updated**: 2025-10-12T16:30:00+02:00",
            ),
            ("last_seen", NOW),
        ),
        (("- **State**: CLOSED", "- **State**: half-open"), ("breaker_state", "half_open")),
        (("Success: ❌", "Success: yes"), ("recent", True)),
    ],
)
def test_hand_edited_values_are_tolerated(edit: tuple[str, str], check: tuple[str, object]) -> None:
    agent = parse_agent(SEED.replace(*edit), "f")
    attr, want = check
    got = agent.recent[1]["success"] if attr == "recent" else getattr(agent, attr)
    assert got == want
    assert roundtrip(agent) == agent


def test_added_section_survives_a_render() -> None:
    text = SEED.replace("## Notes", "## My Notes\n\nwatch the `gpu`\n- one\n\n## Notes")
    agent = parse_agent(text, "f")
    assert agent.extra_sections == [("My Notes", "watch the `gpu`\n- one")]
    rendered = render_agent(agent, NOW)
    assert "## My Notes\n\nwatch the `gpu`\n- one\n" in rendered
    assert parse_agent(rendered, "f") == agent


def test_crlf_file_is_read() -> None:
    assert parse_agent(SEED.replace("\n", "\r\n"), "f") == parse_agent(SEED, "f")


def test_minimal_file_and_defaults() -> None:
    agent = parse_agent("# Agent: solo\n\n**Status**: idle\n", "f")
    assert agent == Agent("solo")


def test_render_details() -> None:
    agent = Agent("a", workload=150, capabilities=["gpu", "a,b"])
    agent.recent = [{"id": "t", "title": "x", "completed": None, "duration": 8103.5}]
    agent.active = [{"id": "t2", "title": "done (draft)", "current": 3.0, "total": None}]
    text = render_agent(agent, NOW)
    assert "**Workload**: 100%" in text  # clamped so the file stays readable
    assert "**Capabilities**: gpu, a\\x2cb" in text
    assert "  - Duration: 2h 15m 3.5s" in text
    assert "### Task: done (draft\\x29" in text  # not read back as project "draft"
    back = parse_agent(text, "f")
    assert back.capabilities == ["gpu", "a,b"]
    assert back.recent[0]["duration"] == 8103.5
    assert back.active[0]["title"] == "done (draft)"
    assert back.active[0]["project"] is None
    assert (back.active[0]["current"], back.active[0]["total"]) == (3.0, None)


# --------------------------------------------------------------------------- corrupt files ----


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.split("\n"), 1) if needle in ln)


@pytest.mark.parametrize(
    ("old", "new", "at", "reason"),
    [
        ("# Agent: ai-engineer", "# Agnet: ai-engineer", "# Agnet", "heading"),
        ("# Agent: ai-engineer\n", "", None, "heading"),
        ("# Agent: ai-engineer", "# Agent: ../etc", "# Agent", "invalid agent name"),
        ("**Status**: BUSY", "**Status**: SLEEPING", "**Status**", "unknown status"),
        ("**Status**: BUSY\n", "", "# Agent", "Status"),
        ("**Workload**: 85%", "**Workload**: 101%", "**Workload**", "Workload"),
        ("**Workload**: 85%", "**Workload**: -5%", "**Workload**", "Workload"),
        ("**Workload**: 85%", "**Workload**: high", "**Workload**", "Workload"),
        ("**Workload**: 85%", "**Workload**: 85.5%", "**Workload**", "Workload"),
        ("**Workload**: 85%", f"**Workload**: {'9' * 5000}", "**Workload**", "Workload"),
        ("Updated**: 2025-10-12T14:30:00Z", "Updated**: noon", "**Last Updated**", "timestamp"),
        ("Started**: 2025-10-12T13:45", "Started**: 2025-13-12T13:45", "13-12", "timestamp"),
        ("- **Task ID**: task-125\n", "", "evaluate-checkpoint", "Task ID"),
        ("- **Task ID**: task-125", "- **Task ID**: a/b", "a/b", "invalid task id"),
        ("- **Progress**: 70%", "- **Progress**: most", "most", "Progress"),
        ("Completed: 2025-10-12T07:30:00Z", "Completed: later", "later", "timestamp"),
        ("Duration: 5m", "Duration: a while", "a while", "duration"),
        ("Success: ❌", "Success: maybe", "maybe", "Success"),
        ("(task-118)", "(task 118)", "task 118", "invalid task id"),
        ("- **State**: CLOSED", "- **State**: AJAR", "AJAR", "breaker state"),
        ("- **Failure Count**: 0/3", "- **Failure Count**: x/3", "x/3", "whole number"),
        ("**Success Rate**: 100% (24/24)", "**Success Rate**: all", "all", "Success Rate"),
        ("**Failed Tasks**: 0", "**Failed Tasks**: none", "none", "Failed Tasks"),
    ],
)
def test_corrupt_files_name_the_line(old: str, new: str, at: str | None, reason: str) -> None:
    assert old in SEED
    bad = SEED.replace(old, new, 1)
    with pytest.raises(CorruptData) as info:
        parse_agent(bad, "agent-ai-engineer.md")
    assert info.value.line == (line_of(bad, at) if at else 1)
    assert reason.lower() in info.value.reason.lower()
    assert info.value.path == "agent-ai-engineer.md"


def check_parse_or_corrupt(text: str) -> None:
    try:
        agent = parse_agent(text, "f")
    except CorruptData:
        return
    assert isinstance(agent, Agent)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_only_raises_corrupt(text: str) -> None:
    check_parse_or_corrupt(text)


SECTION_LINES = ["## Active Tasks", "## Recent Completions (Last 24h)", "## Metrics"]
SECTION_LINES += ["## Circuit Breaker", "### Task: x (p)", "- **Task ID**: t1", "- **Metrics**:"]
SECTION_LINES += ["- **x** (t2)", "  - Duration:", "- **Progress**:", "- **Success Rate**:"]
SECTION_LINES += ["- **State**:", "- **Failure Count**:", "```", "  - Success: ✅"]
section_lines = st.sampled_from(SECTION_LINES)


@settings(max_examples=300, deadline=None)
@given(st.lists(section_lines | st.text(max_size=20) | st.sampled_from(TRICKY), max_size=25))
def test_arbitrary_sections_only_raise_corrupt(lines: list[str]) -> None:
    check_parse_or_corrupt("# Agent: a\n\n**Status**: idle\n" + "\n".join(lines))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents(), st.data())
def test_mutated_files_only_raise_corrupt(agent: Agent, data: st.DataObject) -> None:
    lines = render_agent(agent, NOW).split("\n")
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
@given(agents(), st.data())
def test_invalid_utf8_is_corrupt_or_parses(agent: Agent, data: st.DataObject) -> None:
    raw = bytearray(render_agent(agent, NOW).encode("utf-8"))
    for _ in range(data.draw(st.integers(1, 5))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0x80, 0xFF))
    check_parse_or_corrupt(raw.decode("utf-8", errors="replace"))


@settings(max_examples=100, deadline=None)
@given(names)
def test_name_strategy_draws_valid_names(name: str) -> None:
    assert is_valid_name(name)


LONG = 200_000
LONG_BODIES = {
    "heading-spaces": f"## Active Tasks\n### Task: a{' ' * LONG}b\n- **Task ID**: t\n",
    "heading-lead": f"## Active Tasks\n###{' ' * LONG}x\n- **Task ID**: t\n",
    "heading-parens": f"## Active Tasks\n### Task: a{' (' * LONG}\n- **Task ID**: t\n",
    "metric": f"## Active Tasks\n### T\n- **Task ID**: t\n- **Metrics**:\n  - a{' ' * LONG}b\n",
    "metric-lead": f"## Active Tasks\n### T\n- **Task ID**: t\n- **Metrics**:\n  -{' ' * LONG}x: 1\n",
    "recent-title": f"## Recent Completions\n- **{'a' * LONG}** ({'b' * LONG}\n",
    "recent-stars": f"## Recent Completions\n- **{'**(' * LONG}\n",
    "recent-sub": f"## Recent Completions\n- **x** (t)\n  -{' ' * LONG}Success\n",
    "duration": f"## Recent Completions\n- **x** (t)\n  - Duration: {'1 ' * LONG}\n",
}


@pytest.mark.parametrize("name", sorted(LONG_BODIES))
def test_long_hand_edited_lines_parse_in_linear_time(name: str) -> None:
    # Quadratic regex backtracking would take minutes here; linear parsing takes milliseconds.
    start = time.perf_counter()
    check_parse_or_corrupt("# Agent: a\n\n**Status**: idle\n" + LONG_BODIES[name])
    assert time.perf_counter() - start < 3.0
