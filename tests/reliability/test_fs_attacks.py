"""File-system attacks on a markdown workspace.

- A record file replaced by a symlink to a file outside the workspace: every write replaces the
  link (``rename(2)``), never writes through it; the outside file is untouched.
- A symlinked lock file is refused (exit 5), even a dangling one (nothing is created).
- Symlinked directories inside the workspace are reported by ``doctor``.
- Everything created is not world-writable, under the default umask and under ``umask 000``.
- Bad names are refused with exit 2 (``invalid_name``) through the CLI, the API and MCP, and
  nothing is created.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agentcoord.api import Coordinator
from agentcoord.cli.main import main
from agentcoord.errors import CorruptData, InvalidInput
from agentcoord.store.markdown.codec.task import parse_task
from agentcoord.workspace import Workspace, init_workspace

from .invariants import report

PRECIOUS = "precious: not yours to write\n"


@pytest.fixture
def coord(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Coordinator]:
    monkeypatch.setenv("COORD_FSYNC", "0")
    c = Coordinator.open(workspace.root)
    yield c
    c.close()


def plant(link: Path, target: Path, content: str | None = None) -> None:
    """Replace ``link`` by a symlink to ``target`` outside the workspace. The target gets the
    record's own text by default, so that it parses, as an attacker would arrange."""
    if content is None:
        content = link.read_text() if link.exists() else PRECIOUS
    target.write_text(content)
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)


def done(*_: object) -> None:
    """Ignore what the calls returned (the table below wants ``-> None`` steps)."""


# name -> (set the record up, its file relative to the root, a write to it)
Setup = Callable[[Coordinator], None]
RECORDS: dict[str, tuple[Setup, str, Setup]] = {
    "task": (
        lambda c: done(c.tasks.create("t", id="t1")),
        "task-t1.md",
        lambda c: done(c.tasks.claim("t1", agent="a1", register=True)),
    ),
    "agent": (
        lambda c: done(c.agents.register("a1")),
        "agent-a1.md",
        lambda c: done(c.agents.heartbeat("a1", workload=5)),
    ),
    "events": (
        lambda c: done(c.events.emit("ch", "tick")),
        "events-ch.md",
        lambda c: done(c.events.emit("ch", "tock")),
    ),
    "context": (
        lambda c: done(c.contexts.put("p", "d", {"a": 1})),
        "context-p-d.md",
        lambda c: done(c.contexts.put("p", "d", {"a": 2})),
    ),
    "cursors": (
        lambda c: done(c.events.emit("ch", "tick"), c.events.ack("ch", "me", 1)),
        ".state/cursors-ch.json",
        lambda c: done(c.events.emit("ch", "tock"), c.events.ack("ch", "me", 2)),
    ),
    "counter": (
        lambda c: done(c.tasks.create("t")),
        ".state/counter-task",
        lambda c: done(c.tasks.create("u")),
    ),
    "index": (
        lambda c: done(c.tasks.create("t", id="t1"), c.tasks.list()),
        ".state/index-task.json",
        lambda c: done(c.tasks.create("u", id="u1"), c.tasks.list()),
    ),
    "metrics": (
        lambda c: done(c.metrics.write()),
        "metrics-performance.md",
        lambda c: done(c.metrics.write()),
    ),
}


#: Records a write replaces without reading first (a cache, a rendered report): the planted link
#: is replaced by the record. Every other record is read first, and a symlink is never read.
REPLACED = {"index", "metrics"}


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_a_symlinked_record_is_never_read_or_written_through(
    coord: Coordinator, tmp_path: Path, kind: str
) -> None:
    """SPEC section 16: reads open with ``O_NOFOLLOW`` (a planted link is corrupt data, exit 6,
    not a record), writes never follow one (they replace it, or refuse)."""
    setup, name, write = RECORDS[kind]
    setup(coord)
    link = Path(coord.store.location) / name
    outside = tmp_path / "outside" / name.replace("/", "_")
    outside.parent.mkdir(exist_ok=True)
    plant(link, outside)
    before = outside.read_text()
    assert any(v.kind == "symlink" for v in coord.doctor.check())  # reported while it is there
    if kind in REPLACED:
        write(coord)
        assert link.exists() and not link.is_symlink(), "the link was not replaced"
    else:
        with pytest.raises(CorruptData, match="symbolic link"):
            write(coord)
        assert link.is_symlink(), "a record the store could not read was replaced"
    assert outside.read_text() == before, "a write went through the symlink"
    report("fs_attacks", case=f"symlink {kind}", violations=0)


def test_archiving_onto_a_planted_symlink_does_not_write_through_it(
    coord: Coordinator, tmp_path: Path
) -> None:
    coord.tasks.create("t", id="t1")
    coord.tasks.cancel("t1")
    archive = Path(coord.store.location) / "archive"
    plant(archive / "task-t1.md", tmp_path / "outside.md", PRECIOUS)
    coord.maintenance.cleanup(stale_hours=0)
    assert (tmp_path / "outside.md").read_text() == PRECIOUS
    assert not (Path(coord.store.location) / "task-t1.md").exists()  # it was archived
    texts = [p.read_text() for p in archive.glob("task-t1*.md") if not p.is_symlink()]
    assert len(texts) == 1 and parse_task(texts[0], "x").status == "cancelled"


@pytest.mark.parametrize("dangling", [False, True], ids=["existing", "dangling"])
def test_a_symlinked_lock_file_is_refused(
    coord: Coordinator, tmp_path: Path, dangling: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    coord.tasks.create("t", id="t1")
    coord.agents.register("a1")
    lock = Path(coord.store.location) / ".locks" / "task-t1.lock"
    target = tmp_path / "victim.lock"
    plant(lock, target, PRECIOUS)
    if dangling:
        target.unlink()
    # Something planted in the workspace is corrupt data (exit 6), like a planted record.
    with pytest.raises(CorruptData, match="symbolic link"):
        coord.tasks.claim("t1", agent="a1")
    assert coord.tasks.get("t1").status == "pending"
    assert (not target.exists()) if dangling else target.read_text() == PRECIOUS
    monkeypatch.setenv("COORD_DIR", str(coord.store.location))
    assert main(["task", "claim", "t1", "--agent", "a1"]) == 6
    assert (not target.exists()) if dangling else target.read_text() == PRECIOUS


@pytest.mark.parametrize("directory", [".locks", ".state", "archive"])
def test_doctor_reports_a_symlinked_directory(
    coord: Coordinator, tmp_path: Path, directory: str
) -> None:
    coord.tasks.create("t")  # creates .locks and .state
    path = Path(coord.store.location) / directory
    outside = tmp_path / "elsewhere"
    path.rename(outside)
    path.symlink_to(outside, target_is_directory=True)
    found = [v for v in coord.doctor.check() if v.kind == "symlink"]
    assert [v.key for v in found] == [directory] and found[0].file == str(path)
    assert not found[0].repairable


def test_doctor_reports_a_record_read_through_a_symlink(coord: Coordinator, tmp_path: Path) -> None:
    coord.agents.register("a1")
    plant(Path(coord.store.location) / "agent-a1.md", tmp_path / "a.md")
    found = coord.doctor.check()
    assert sorted((v.kind, v.key) for v in found) == [
        ("corrupt", "agent-a1.md"),  # never read through it ...
        ("symlink", "agent-a1.md"),  # ... and named for what it is
    ]
    assert any("a.md" in v.message for v in found if v.kind == "symlink")


# -- permissions ---------------------------------------------------------------------------------
@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def world_writable(root: Path) -> list[str]:
    bad = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_IWOTH:
            bad.append(f"{path} {stat.S_IMODE(st.st_mode):o}")
    return bad


def exercise(root: str) -> None:
    """Create every kind of file a workspace holds."""
    ws, _ = init_workspace(root)
    coord = Coordinator.open(ws.root)
    coord.agents.register("a1")
    coord.tasks.create("first")
    coord.tasks.create("dep", id="d1")
    coord.tasks.create("second", id="t2", depends_on=["d1"])
    coord.tasks.claim("d1", agent="a1")
    coord.tasks.progress("d1", agent="a1", percent=50, message="half")
    coord.tasks.complete("d1", agent="a1")
    coord.agents.heartbeat("a1")
    for i in range(5):
        coord.events.emit("ch", "tick", {"i": i})
    coord.events.ack("ch", "me", 3)
    coord.contexts.put("p", "d", {"a": 1})
    coord.metrics.write()
    coord.tasks.list()
    coord.maintenance.cleanup(stale_hours=0, keep_events=1)


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_nothing_created_is_world_writable(tmp_path: Path, mask: int) -> None:
    (tmp_path / "proj" / ".claude").mkdir(parents=True)
    root = tmp_path / "proj" / ".claude" / "coordination"
    with umask(mask):
        exercise(str(root))
        assert main(["--dir", str(tmp_path / "cli"), "init"]) == 0
    assert list(root.glob("archive/task-*.md")), "cleanup archived nothing"
    assert world_writable(root) == []
    assert world_writable(tmp_path / "cli") == []


def test_parent_directories_made_by_init_are_not_world_writable(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    with umask(0o000):
        init_workspace(str(tmp_path / "proj" / ".claude" / "coordination"))
    assert world_writable(tmp_path / "proj") == []


def test_doctor_fix_removes_world_write_permission(coord: Coordinator) -> None:
    coord.tasks.create("t", id="t1")
    path = Path(coord.store.location) / "task-t1.md"
    path.chmod(0o666)
    found = [v for v in coord.doctor.check() if v.kind == "permissions"]
    assert [(v.key, v.repairable) for v in found] == [("task-t1.md", True)]
    assert coord.doctor.fix() == [f"removed world write permission from {path}"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert coord.doctor.check() == []


# -- names ---------------------------------------------------------------------------------------
BAD_NAMES = [
    "", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "x\x00y", "a\nb", "a b", "-x",
    ".hidden", "a" * 65, "é", "a\u2028b", "~root", "$(id)", "*", "a:b", "CON\r",
]  # fmt: skip


def files(root: str) -> set[str]:
    return {str(p.relative_to(root)) for p in Path(root).rglob("*")}


@pytest.fixture
def board(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Workspace:
    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.setenv("COORD_FSYNC", "0")
    monkeypatch.delenv("COORD_URL", raising=False)
    coord = Coordinator.open(workspace.root)
    coord.tasks.create("t", id="t1")
    coord.agents.register("a1")
    coord.tasks.claim("t1", agent="a1")
    coord.events.emit("ch", "tick")
    (tmp_path / "data.json").write_text("{}")
    return workspace


def cli_commands(bad: str, data: str) -> list[list[str]]:
    return [
        ["task", "create", "T", "--id", bad],
        ["task", "create", "T", "--project", bad],
        ["task", "create", "T", "--depends-on", bad],
        ["task", "show", bad],
        ["task", "claim", bad, "--agent", "a1"],
        ["task", "claim", "--agent", bad],
        ["task", "progress", "t1", "--agent", bad, "--percent", "5"],
        ["task", "progress", bad, "--agent", "a1", "--percent", "5"],
        ["agent", "register", bad],
        ["agent", "heartbeat", bad],
        ["event", "emit", bad, "tick"],
        ["event", "emit", "ch", bad],
        ["event", "tail", bad],
        ["event", "tail", "ch", "--consumer", bad],
        ["context", "put", bad, "d", "--file", data],
        ["context", "put", "p", bad, "--file", data],
        ["context", "get", "p", bad],
        ["timer", "start", "--name", bad],
    ]


#: An empty name taken for "not given" instead of refused: (command, option) -> the strict
#: xfail test that shows it. Remove an entry with its fix.
EMPTY_IGNORED: dict[tuple[str, str], str] = {}


def test_bad_names_exit_2_through_the_cli_and_touch_nothing(
    board: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files(board.root)
    cases = 0
    for bad in BAD_NAMES:
        for argv in cli_commands(bad, str(tmp_path / "data.json")):
            if bad == "" and (argv[1], argv[-2]) in EMPTY_IGNORED:
                continue
            code = main(["--json", *argv])
            out, err = capsys.readouterr()
            assert code == 2, (argv, out, err)
            assert json.loads(err.strip().splitlines()[-1])["error"]["code"] in (
                "invalid_name",
                "invalid_input",
            ), (argv, err)
            cases += 1
    assert files(board.root) == before
    report("fs_attacks", case="bad names cli", cases=cases, violations=0)


def test_empty_consumer_name_is_refused(board: Workspace) -> None:
    assert main(["event", "tail", "ch", "--consumer", ""]) == 2


def test_empty_timer_name_is_refused(board: Workspace) -> None:
    try:
        assert main(["timer", "start", "--name", "", "--interval", "60"]) == 2
    finally:
        main(["timer", "stop", "--all"])  # by the pid file, only if the bug started one


def test_bad_names_are_refused_by_the_api_and_touch_nothing(board: Workspace) -> None:
    coord = Coordinator.open(board.root)
    before = files(board.root)
    calls: list[Callable[[str], Any]] = [
        lambda b: coord.tasks.create("T", id=b),
        lambda b: coord.tasks.create("T", project=b),
        lambda b: coord.tasks.create("T", depends_on=[b]),
        lambda b: coord.tasks.create("T", assign=b),
        coord.tasks.get,
        lambda b: coord.tasks.claim(b, agent="a1"),
        lambda b: coord.tasks.claim(agent=b),
        lambda b: coord.tasks.progress("t1", agent=b, percent=5),
        lambda b: coord.tasks.log(b, "m", agent="a1"),
        lambda b: coord.tasks.complete(b, agent="a1"),
        lambda b: coord.tasks.assign("t1", b),
        coord.tasks.cancel,
        coord.agents.register,
        coord.agents.heartbeat,
        coord.agents.retire,
        lambda b: coord.events.emit(b, "tick"),
        lambda b: coord.events.emit("ch", b),
        lambda b: coord.events.emit("ch", "tick", agent=b),
        coord.events.tail,
        lambda b: coord.events.consume("ch", b),
        lambda b: coord.events.ack("ch", b, 1),
        lambda b: coord.contexts.put(b, "d", {}),
        lambda b: coord.contexts.put("p", b, {}),
        lambda b: coord.contexts.get("p", b),
    ]
    cases = 0
    for bad in BAD_NAMES:
        for call in calls:
            with pytest.raises(InvalidInput) as info:
                call(bad)
            assert info.value.exit_code == 2
            cases += 1
    assert files(board.root) == before
    report("fs_attacks", case="bad names api", cases=cases, violations=0)


@pytest.mark.anyio
async def test_bad_names_are_refused_by_mcp_and_touch_nothing(board: Workspace) -> None:
    from mcp.shared.memory import create_connected_server_and_client_session

    from agentcoord.mcp.server import build_server

    coord = Coordinator.open(board.root)
    before = files(board.root)
    cases = 0
    a1 = {"agent": "a1"}
    slots: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        ("create_task", lambda b: {"title": "x", "id": b}),
        ("create_task", lambda b: {"title": "x", "project": b}),
        ("create_task", lambda b: {"title": "x", "depends_on": [b]}),
        ("claim", lambda b: {"id": b, **a1}),
        ("claim", lambda b: {"agent": b}),
        ("progress", lambda b: {"id": b, "percent": 5, **a1}),
        ("progress", lambda b: {"id": "t1", "percent": 5, "agent": b}),
        ("finish", lambda b: {"id": b, "outcome": "complete", **a1}),
        ("show_task", lambda b: {"id": b}),
        ("list_tasks", lambda b: {"agent": b}),
        ("register", lambda b: {"agent": b}),
        ("heartbeat", lambda b: {"agent": b}),
        ("emit_event", lambda b: {"channel": b, "type": "t"}),
        ("emit_event", lambda b: {"channel": "ch", "type": b}),
        ("read_events", lambda b: {"channel": b, **a1}),
        ("read_events", lambda b: {"channel": "ch", "agent": b}),
        ("context", lambda b: {"project": b, "domain": "d"}),
        ("context", lambda b: {"project": "p", "domain": b, "data": {}}),
    ]
    async with create_connected_server_and_client_session(build_server(coord, agent=None)) as s:
        for bad in BAD_NAMES:
            for tool, args in slots:
                result = await s.call_tool(tool, args(bad))
                assert result.isError, (tool, bad, result.content)
                data = json.loads(result.content[0].text)  # type: ignore[union-attr]
                assert data["code"] in ("invalid_name", "invalid_input"), (tool, bad, data)
                cases += 1
    assert files(board.root) == before
    report("fs_attacks", case="bad names mcp", cases=cases, violations=0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("directory", [".locks", ".state", "archive"])
def test_a_fifo_in_place_of_a_workspace_directory_is_corrupt_data(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], directory: str
) -> None:
    """A FIFO where ``.locks/``, ``.state/`` or ``archive/`` belongs is reported like any
    planted special file (exit 6 naming it), not as an I/O failure (exit 5)."""
    import shutil

    path = Path(workspace.root) / directory
    command = ["task", "create", "t"]
    if directory == "archive":
        assert main(["--dir", workspace.root, "task", "create", "t"]) == 0
        assert main(["--dir", workspace.root, "task", "cancel", "1"]) == 0
        capsys.readouterr()
        command = ["cleanup", "--stale-hours", "0"]
    shutil.rmtree(path, ignore_errors=True)
    os.mkfifo(path)
    assert main(["--dir", workspace.root, *command]) == 6
    assert f"{path}:1: is " in capsys.readouterr().err
