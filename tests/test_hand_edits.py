"""People edit the workspace's files by hand (SPEC sections 3 and 9, issue 14 item 6): a byte order
mark and CRLF are tolerated; git conflict markers, a header field given twice, invalid UTF-8 and
files that are not regular files are corrupt data (exit 6, ``path:line``), never read as a mixed
record, never waited on and never overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.core.config import Config
from agentcoord.store.markdown.store import MarkdownStore
from agentcoord.workspace import Workspace, load_config

from .conftest import COORD, FakeClock, coord_env


@pytest.fixture
def coord(workspace: Workspace, clock: FakeClock) -> Coordinator:
    store = MarkdownStore(workspace.root, durable=False, clock=clock)
    return Coordinator(store, config=Config(), workspace=workspace, clock=clock)


def _file(coord: Coordinator, name: str) -> Path:
    return Path(coord.store.location) / name


def _setup(coord: Coordinator) -> None:
    coord.agents.register("a1")
    coord.tasks.create("build the thing", id="t1")
    coord.tasks.claim("t1", agent="a1")
    coord.events.emit("team", "started", {"who": "a1"})
    coord.contexts.put("proj", "api", {"base": "/v1"})


FILES = ["task-t1.md", "agent-a1.md", "events-team.md", "context-proj-api.md"]


def _read_all(coord: Coordinator) -> None:
    coord.tasks.get("t1")
    coord.agents.get("a1")
    coord.events.tail("team")
    coord.contexts.get("proj", "api")


# -- tolerated ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("edit", ["bom", "crlf", "bom+crlf"])
def test_a_byte_order_mark_and_crlf_are_tolerated(coord: Coordinator, name: str, edit: str) -> None:
    _setup(coord)
    path = _file(coord, name)
    text = path.read_text()
    if "crlf" in edit:
        text = text.replace("\n", "\r\n")
    raw = text.encode()
    if "bom" in edit:
        raw = b"\xef\xbb\xbf" + raw
    path.write_bytes(raw)
    _read_all(coord)
    assert [t.id for t in coord.tasks.list()] == ["t1"]  # the task does not vanish
    coord.tasks.progress("t1", agent="a1", percent=40)  # and writes work
    coord.events.emit("team", "more")
    assert coord.doctor.check() == []


def test_a_config_json_with_a_byte_order_mark_works(workspace: Workspace) -> None:
    path = Path(workspace.root) / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"lease_seconds": 42}).encode())
    assert load_config(workspace.root)["lease_seconds"] == 42
    out = subprocess.run(
        [*COORD, "--json", "task", "create", "x", "--id", "x"],
        env=coord_env(workspace.root),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


# -- corrupt ------------------------------------------------------------------------------------
CONFLICT = "<<<<<<< HEAD\n{ours}\n=======\n{theirs}\n>>>>>>> feature\n"


def _conflicted(text: str, line: str, other: str) -> str:
    assert line in text
    return text.replace(line + "\n", CONFLICT.format(ours=line, theirs=other), 1)


CONFLICTS = {
    "task-t1.md": ("**Status**: in_progress", "**Status**: complete"),
    "agent-a1.md": ("**Status**: BUSY", "**Status**: IDLE"),
    "events-team.md": ("**Seq**: 1", "**Seq**: 7"),
    "context-proj-api.md": ('  "base": "/v1"', '  "base": "/v2"'),
}


@pytest.mark.parametrize("name", sorted(CONFLICTS))
def test_git_conflict_markers_are_corrupt_and_never_overwritten(
    coord: Coordinator, name: str
) -> None:
    _setup(coord)
    path = _file(coord, name)
    ours, theirs = CONFLICTS[name]
    text = _conflicted(path.read_text(), ours, theirs)
    path.write_text(text)
    with pytest.raises(errors.CorruptData, match=r":\d+: a git conflict marker"):
        _read_all(coord)
    with pytest.raises(errors.CorruptData):  # the write path refuses it too ...
        {
            "task-t1.md": lambda: coord.tasks.complete("t1", agent="a1"),
            "agent-a1.md": lambda: coord.agents.heartbeat("a1"),
            "events-team.md": lambda: coord.events.emit("team", "x"),
            "context-proj-api.md": lambda: coord.contexts.put("proj", "api", {"base": "/v3"}),
        }[name]()
    assert path.read_text() == text  # ... and leaves the conflict for a person


def test_a_conflicted_task_is_reported_by_the_cli_with_its_line(coord: Coordinator) -> None:
    _setup(coord)
    path = _file(coord, "task-t1.md")
    path.write_text(_conflicted(path.read_text(), *CONFLICTS["task-t1.md"]))
    out = subprocess.run(
        [*COORD, "--json", "task", "show", "t1"],
        env=coord_env(coord.store.location),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 6
    error = json.loads(out.stderr)["error"]
    assert error["code"] == "corrupt" and error["path"] == str(path) and error["line"] > 1


def test_a_header_field_given_twice_is_corrupt(coord: Coordinator) -> None:
    _setup(coord)
    path = _file(coord, "task-t1.md")
    text = path.read_text().replace(
        "**Status**: in_progress\n", "**Status**: in_progress\n**Status**: complete\n"
    )
    path.write_text(text)
    with pytest.raises(errors.CorruptData, match="given twice"):
        coord.tasks.get("t1")
    with pytest.raises(errors.CorruptData):
        coord.tasks.complete("t1", agent="a1")
    assert path.read_text() == text


@pytest.mark.parametrize("name", FILES)
def test_invalid_utf8_is_corrupt_with_its_line_never_replaced(
    coord: Coordinator, name: str
) -> None:
    _setup(coord)
    path = _file(coord, name)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2] + b" \xff\xfe"
    raw = b"\n".join(lines)
    path.write_bytes(raw)
    with pytest.raises(errors.CorruptData) as info:
        _read_all(coord)
    assert info.value.line == 3 and "UTF-8" in info.value.reason
    assert path.read_bytes() == raw


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink-to-fifo", "symlink"])
def test_a_record_that_is_not_a_regular_file_is_corrupt_and_never_waited_on(
    coord: Coordinator, tmp_path: Path, kind: str
) -> None:
    _setup(coord)
    path = _file(coord, "task-t1.md")
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        target = tmp_path / "outside"
        if kind == "symlink-to-fifo":
            os.mkfifo(target)
        else:
            target.write_text("**Task ID**: t1\n")
        path.symlink_to(target)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            coord.tasks.get("t1")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "the read waited on a non-regular file"
    assert isinstance(outcome[0], errors.CorruptData), outcome
    assert outcome[0].line == 1
    with pytest.raises(errors.CorruptData):
        coord.tasks.complete("t1", agent="a1")
    errs: list[errors.CorruptData] = []
    assert coord.tasks.list(errors=errs) == [] and len(errs) == 1  # listed as unreadable


@pytest.mark.parametrize(
    ("name", "line", "edit"),
    [
        ("task-t1.md", "**Status**: in_progress", "\n## Notes\n\\uD800 said hi\n"),
        ("agent-a1.md", "**Status**: BUSY", "\n## Notes\nnote \\udcff\n"),
        ("events-team.md", "**Seq**: 1", "**Who**: \\uDFFF\n"),
        ("context-proj-api.md", '  "base": "/v1"', '  "odd": "\\ud800",\n'),
    ],
)
def test_an_escaped_lone_surrogate_is_text_or_corrupt_never_a_crash(
    coord: Coordinator, name: str, line: str, edit: str
) -> None:
    """A hand-typed ``\\uD800`` (an escape for no character) reads back as the literal text, or,
    inside JSON, as corrupt data; never as an input error from a parser, never a crash."""
    _setup(coord)
    path = _file(coord, name)
    text = path.read_text()
    if name.startswith("context"):
        text = text.replace(line + "\n", edit + line + "\n", 1)
    elif name.startswith("events"):
        at = text.index(line) + len(line) + 1
        text = text[:at] + edit + text[at:]
    else:
        text = text.rstrip("\n") + "\n" + edit
    path.write_text(text)
    try:
        _read_all(coord)
    except errors.CorruptData:
        assert name.startswith("context")
    else:
        assert not name.startswith("context")
