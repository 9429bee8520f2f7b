"""Terminal injection (SPEC section 16, issue 15 item 6): text supplied by agents reaches people
with control, format and separator characters escaped, and a newline in a title is refused.

The attacks themselves: titles, errors, notes, event values and context data holding
``ESC ]0;... BEL`` (window title), ``ESC ]52;c;... BEL`` (clipboard write), ``ESC [2J`` (clear
screen), the 8-bit CSI ``\\x9b``, bidi overrides (Trojan Source), a lone ``\\r`` and newlines that
would forge rows, pushed through the real CLI on every backend, the MCP tools, the Python API,
a hand-edited task file and the dashboard rendered to a real terminal console.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcoord.api import Coordinator
from agentcoord.core.models import Task
from agentcoord.core.text import (
    escape_char,
    is_safe,
    json_safe,
    scrub,
    shown,
    shown_block,
    unshown,
)
from agentcoord.errors import InvalidInput
from agentcoord.workspace import Workspace

#: Unicode categories no human output may hold raw (the newline between lines excepted).
FORBIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

#: The attacks: each must reach a terminal only escaped.
PAYLOADS = {
    "osc-title+clear": "\x1b]0;pwned\x07\x1b[2J",
    "osc52-clipboard": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "c1-csi": "\x9b2J\x9d0;x\x9c",
    "bidi": "\u202eevil\u202c \u2066x\u2069",
    "lone-cr": "safe\roverwritten",
    "newline": "x\n2  complete  -  0  fake",
    "invisible": "a\u200bb\ufeffc\u2028d\U000e0041\x7f",
}
#: What a title may hold (the others are refused at input: controls and line breaks).
TITLE_OK = {"bidi"}


def forbidden(text: str, *, newlines: bool = True) -> list[str]:
    """The characters of ``text`` a terminal would act on (newlines allowed if ``newlines``)."""
    return [
        ch for ch in text if unicodedata.category(ch) in FORBIDDEN and not (newlines and ch == "\n")
    ]


def assert_safe(text: str, what: str = "") -> None:
    bad = forbidden(text)
    assert not bad, f"{what}: raw {bad!r} in {text!r}"


# -- the escaping function ------------------------------------------------------------------------
def test_escape_forms_are_visible_and_unambiguous() -> None:
    assert shown("\x1b]0;pwned\x07\x1b[2J") == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert shown("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert shown("\x9b\x7f\x00") == "\\x9b\\x7f\\x00"
    assert shown("\u202eabc\u202c") == "\\u202eabc\\u202c"
    assert shown("\U000e0041") == "\\U000e0041"
    assert shown("\udcff") == "\\udcff"  # a lone surrogate: shown, never a crash
    # A backslash is doubled only where it would read as an escape.
    assert shown("C:\\Temp\\data \\d+ 50\\") == "C:\\Temp\\data \\d+ 50\\"
    assert shown("C:\\new") == "C:\\\\new"
    assert shown("\\x1b") == "\\\\x1b"  # spelled out: never looks like a real ESC
    assert shown("\\xZZ \\u12") == "\\xZZ \\u12"
    assert shown("\\\x1b") == "\\\\\\x1b"
    assert shown("plain text, ünïcödé, 日本語, emoji 😀") == "plain text, ünïcödé, 日本語, emoji 😀"
    assert shown_block("line 1\nline\x1b 2") == "line 1\nline\\x1b 2"
    assert escape_char("\n") == "\\n" and escape_char("\u2028") == "\\u2028"


def test_the_escaped_set_covers_every_control_format_and_separator_character() -> None:
    """Checked against this Python's Unicode database: every Cc, Cf, Cs, Zl and Zp character
    is escaped (a newer Unicode adding a format character fails here: extend UNSAFE_CLASS)."""
    missing = [
        f"U+{cp:04X}"
        for cp in range(0x110000)
        if unicodedata.category(chr(cp)) in FORBIDDEN and shown(chr(cp)) == chr(cp)
    ]
    assert not missing


ANY_TEXT = st.text(
    st.one_of(
        st.characters(codec=None),
        st.sampled_from("\\xuUnrt0123456789abcdefABCDEF\x1b\x9b\n\r\t\u202e\u2028\ufeff"),
    ),
    max_size=40,
)


@given(ANY_TEXT)
def test_shown_is_safe_and_one_to_one(value: str) -> None:
    out = shown(value)
    assert not forbidden(out, newlines=False)
    assert unshown(out) == value  # so two different texts are never shown the same
    block = shown_block(value)
    assert not forbidden(block)
    assert unshown(block) == value
    assert scrub(out) == out  # the final pass never escapes twice
    assert scrub(block) == block
    assert is_safe(block)


@given(ANY_TEXT, ANY_TEXT)
def test_different_texts_are_shown_differently(a: str, b: str) -> None:
    if a != b:
        assert shown(a) != shown(b)


@given(ANY_TEXT)
def test_scrub_keeps_newlines_and_escapes_the_rest(value: str) -> None:
    out = scrub(value)
    assert not forbidden(out)
    assert out.count("\n") == value.count("\n")
    assert scrub(out) == out


@given(st.recursive(st.none() | ANY_TEXT | st.integers(), lambda c: st.lists(c, max_size=3)))
def test_json_safe_is_the_same_json(data: Any) -> None:
    dumped = json_safe(json.dumps(data, ensure_ascii=False))
    assert not forbidden(dumped)
    assert json.loads(dumped) == data


# -- refused at input -----------------------------------------------------------------------------
BAD_TITLES = [
    "two\nlines",
    "cr\rhere",
    "tab\there",
    "esc\x1b[2J",
    "nel\x85x",
    "ls\u2028x",
    "del\x7f",
]


@pytest.mark.parametrize("title", BAD_TITLES)
def test_api_refuses_a_title_that_is_not_one_line(coord: Coordinator, title: str) -> None:
    with pytest.raises(InvalidInput) as info:
        coord.tasks.create(title, id="t1")
    assert info.value.details.get("field") == "title"
    assert "title must be one line" in info.value.message
    assert coord.tasks.heads() == []
    with pytest.raises(InvalidInput, match="title must be one line"):
        coord.contexts.put("proj", "dom", {"k": 1}, title=title)


def test_surrounding_spaces_are_trimmed_not_refused(coord: Coordinator) -> None:
    task = coord.tasks.create("  padded title\t", id="t1")
    assert task.title == "padded title"
    assert coord.tasks.create("rtl \u202eok\u202c", id="t2").title == "rtl \u202eok\u202c"


@pytest.mark.parametrize(
    "title", ["abc\n", "\nabc", "abc\r\n", "\x1cab\x1f", "\x85abc\u2028", "\x0babc\x0c"]
)
def test_a_control_character_at_either_end_is_refused_not_trimmed(
    coord: Coordinator, title: str
) -> None:
    """``str.strip`` would silently drop line breaks, ``\\x1c``-``\\x1f``, NEL and U+2028
    at the ends: a title holding one is refused like one holding it inside."""
    with pytest.raises(InvalidInput, match="title must be one line"):
        coord.tasks.create(title, id="t1")
    assert coord.tasks.heads() == []


@pytest.mark.parametrize("title", ["two\nlines", "esc\x1b]0;x\x07", "c1\x9b2J"])
def test_cli_refuses_a_title_that_is_not_one_line(run_cli: Any, title: str) -> None:
    got = run_cli("task", "create", title, code=2)
    assert "title must be one line" in got.stderr
    assert got.stdout == ""
    assert_safe(got.stderr, "stderr")
    got = run_cli("--json", "task", "create", title, code=2)
    error = json.loads(got.stderr)["error"]
    assert (error["code"], error["field"]) == ("invalid_input", "title")
    assert json.loads(run_cli("--json", "task", "list").stdout) == []


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_mcp_refuses_a_title_that_is_not_one_line(coord: Coordinator) -> None:
    from mcp.shared.memory import create_connected_server_and_client_session

    from agentcoord.mcp.server import build_server

    server = build_server(coord, agent="a1")
    async with create_connected_server_and_client_session(server) as session:
        for title in ("line\nforged", "bell\x07", "\x1b]52;c;eA==\x07"):
            result = await session.call_tool("create_task", {"title": title})
            assert result.isError
            data = json.loads(result.content[0].text)  # type: ignore[union-attr]
            assert data["code"] == "invalid_input" and "title" in data["message"]
        result = await session.call_tool("list_tasks", {})
        assert not result.isError
    assert coord.tasks.heads() == []


# -- the attacks through the CLI ------------------------------------------------------------------
def plant(coord: Coordinator, payload: str) -> None:
    """A task whose stored title holds ``payload`` (as a hand-edited file or a Redis client
    could leave it), bypassing the input check."""
    now = coord.now()
    coord.store.create_task(
        Task("evil", f"evil {payload}", created_at=now, updated_at=now, priority=5)
    )


def run_all(run_cli: Any, tmp_path: Path, payload: str) -> dict[str, str]:
    """Every command that shows agent text, with ``payload`` in every field it can reach;
    returns each command's stdout + stderr."""
    out: dict[str, str] = {}

    def run(name: str, *args: str, code: int = 0) -> None:
        got = run_cli(*args, code=code)
        out[name] = got.stdout + got.stderr

    run("agent register", "agent", "register", "a1", "--note", f"note {payload}")
    run("task claim", "task", "claim", "evil", "--agent", "a1")
    run(
        "task progress",
        *("task", "progress", "evil", "--agent", "a1", "--current", "1", "--total", "4"),
        *("-m", f"step {payload}", "--metric", f"m={payload}"),
    )
    run("task log", "task", "log", "evil", f"log {payload}", "--agent", "a1")
    run("task create other", "task", "create", "other", "--id", "t2", "--next-step", payload)
    run("task claim other", "task", "claim", "t2", "--agent", "a1")
    run("task fail", "task", "fail", "t2", "--agent", "a1", "--error", f"boom {payload}")
    run("task show", "task", "show", "evil")
    run("task show t2", "task", "show", "t2")
    run("task show fields", "task", "show", "evil", "--fields", "title,status,metrics")
    run("task list", "task", "list")
    run("task list fields", "task", "list", "--fields", "id,title,status")
    run("event emit", "event", "emit", "team", "note", f"value={payload}", "--agent", "a1")
    run("event tail", "event", "tail", "team")
    doc = tmp_path / "ctx.json"
    doc.write_text(json.dumps({"key": payload, payload: 1}), encoding="utf-8")
    run("context put", "context", "put", "proj", "dom", "--file", str(doc), "--text", payload)
    run("context get", "context", "get", "proj", "dom")
    run("context get full", "context", "get", "proj", "dom", "--full")
    run("context list", "context", "list")
    run("agent heartbeat", "agent", "heartbeat", "a1", "--note", f"hb {payload}")
    run("agent list", "agent", "list")
    run("agent show", "agent", "show", "a1")
    run("status", "status")
    run("monitor", "monitor")
    run("dashboard", "dashboard", "--once", "--width", "160", "--height", "40")
    return out


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_no_raw_control_reaches_the_terminal(
    coord: Coordinator, run_cli: Any, tmp_path: Path, name: str
) -> None:
    payload = PAYLOADS[name]
    plant(coord, payload)
    outputs = run_all(run_cli, tmp_path, payload)
    for command, text in outputs.items():
        assert_safe(text, command)
    # The title is there, escaped (the newline one cannot forge a row of the table).
    listing = outputs["task list"].splitlines()
    assert len(listing) == 3, listing  # header, evil, t2
    assert any(shown(f"evil {payload}") in line for line in listing)
    assert "boom" in outputs["task show t2"]
    # Under --json the same data comes back exact (and still nothing raw on the terminal).
    for args in (("task", "show", "evil"), ("task", "list"), ("event", "tail", "team")):
        got = run_cli("--json", *args)
        assert not forbidden(got.stdout), args
    task = json.loads(run_cli("--json", "task", "show", "evil").stdout)
    assert task["title"] == f"evil {payload}"
    assert task["metrics"]["m"] == payload
    tail = run_cli("--json", "event", "tail", "team").stdout.splitlines()
    assert json.loads(tail[-1])["fields"]["value"] == payload
    # context get prints the exact JSON (for piping) with the characters as \u escapes.
    assert json.loads(outputs["context get"]) == {"key": payload, payload: 1}


@pytest.mark.parametrize("name", sorted(set(PAYLOADS) - TITLE_OK))
def test_task_create_with_a_bidi_title_is_escaped_and_a_control_title_refused(
    run_cli: Any, name: str
) -> None:
    got = run_cli("task", "create", f"t {PAYLOADS[name]}", code=2)
    assert_safe(got.stderr, "stderr")
    got = run_cli("task", "create", f"t {PAYLOADS['bidi']}", "--id", "b1")
    assert_safe(got.stdout, "stdout")
    assert "\\u202eevil\\u202c" in got.stdout


def test_a_hand_edited_title_with_a_newline_is_shown_escaped(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A person (or a script) edits a task file so that its title unescapes to a newline and
    terminal controls: ``task list`` shows it on one row, escaped; nothing crashes."""
    from agentcoord.cli.main import main

    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)
    assert main(["task", "create", "harmless", "--id", "t1"]) == 0
    assert main(["task", "create", "second", "--id", "t2"]) == 0
    path = next(Path(workspace.root).rglob("task-t1.md"))
    text = path.read_text(encoding="utf-8")
    forged = "ok\\nt9  complete  fake\\x1b]0;pwned\\x07\\u202e"  # as the file escapes
    path.write_text(text.replace("# Task: harmless", f"# Task: {forged}"), encoding="utf-8")
    capsys.readouterr()
    assert main(["task", "list"]) == 0
    out = capsys.readouterr().out
    assert_safe(out, "task list")
    rows = out.splitlines()
    assert len(rows) == 3, rows
    assert "ok\\nt9  complete  fake\\x1b]0;pwned\\x07\\u202e" in rows[1]
    assert not any(row.startswith("t9") for row in rows)
    assert main(["--json", "task", "show", "t1"]) == 0
    shown_json = capsys.readouterr().out
    assert json.loads(shown_json)["title"] == "ok\nt9  complete  fake\x1b]0;pwned\x07\u202e"
    assert "\x1b" not in shown_json and "\u202e" not in shown_json


# -- the dashboard --------------------------------------------------------------------------------
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_dashboard_frame_holds_only_rich_styling(coord: Coordinator, clock: Any, name: str) -> None:
    """Rendered to a real terminal console: the only escape sequences are rich's own SGR
    styling (``ESC [ ... m``); no OSC, no screen clear, no C1, no bidi control."""
    from rich.console import Console

    from agentcoord.dashboard.app import gather
    from agentcoord.dashboard.view import render

    payload = PAYLOADS[name]
    plant(coord, payload)
    coord.agents.register("a1")
    coord.tasks.claim("evil", agent="a1")
    coord.tasks.progress("evil", agent="a1", current=1, total=3, metrics={"loss": payload})
    coord.tasks.create("other", id="t2")
    coord.tasks.claim("t2", agent="a1")
    coord.tasks.fail("t2", agent="a1", error=f"boom {payload}")
    coord.events.emit("team", "note", {"value": payload, "k": "v"}, agent="a1")
    coord.events.emit("ops", "deploy", {"version": payload})
    snap = gather(coord)
    snap.notes.append(f"note {payload}")
    snap.location = f"/tmp/{payload}"
    snap.timers = [{"name": payload, "running": False, "state": payload, "count": 1}]
    for width, height in ((160, 40), (80, 24)):
        for error in (None, f"CorruptData: {payload}"):
            snap.error = error
            file = io.StringIO()
            console = Console(
                file=file,
                force_terminal=True,
                color_system="truecolor",
                width=width,
                height=height,
            )
            console.print(render(snap, width, height))
            frame = file.getvalue()
            assert "\x1b[" in frame  # styled: the console really is a terminal
            bare = SGR.sub("", frame)
            assert "\x1b" not in bare, repr(bare[bare.index("\x1b") - 20 :][:60])
            assert_safe(bare, f"frame {width}x{height}")
            rows = bare.splitlines()
            assert len(rows) == height, len(rows)  # nothing forged an extra line
