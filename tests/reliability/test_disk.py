"""Disk full and read-only directory: a clear error (exit 5, naming the path), the previous file
intact, no temp file left, and everything works again once the disk is back.

With mount privileges (root in a container) the real thing: a 256 KiB tmpfs filled to the last
page, and a tmpfs remounted read-only (``chmod`` does not stop root). The same failures are also
injected as ``OSError`` (ENOSPC, EROFS, EIO) at each step of an atomic write, which always runs.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agentcoord import fs as fsutil
from agentcoord.api import Coordinator
from agentcoord.cli.main import main
from agentcoord.errors import BackendUnavailable
from agentcoord.workspace import init_workspace

from .invariants import report


def _mount(*args: str) -> bool:
    mount = shutil.which("mount")
    if mount is None:
        return False
    done = subprocess.run([mount, *args], capture_output=True, check=False)
    return done.returncode == 0


def _umount(path: Path) -> None:
    umount = shutil.which("umount")
    assert umount is not None
    subprocess.run([umount, "-l", str(path)], capture_output=True, check=False)


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if not _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)):
        pytest.skip("cannot mount a tmpfs here (needs mount privileges); injected errors cover it")
    try:
        yield path
    finally:
        _umount(path)


def fill(directory: Path) -> Path:
    """Write a filler file until the file system is full; return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    failure = 0
    try:
        while not failure:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                failure = exc.errno or -1
    finally:
        os.close(fd)
    assert failure == errno.ENOSPC, os.strerror(failure)
    return filler


def snapshot(root: str) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in Path(root).rglob("*")
        if p.is_file() and ".locks" not in p.parts and p.name != "index-task.json"
    }


def board(root: str) -> Coordinator:
    ws, _ = init_workspace(root)
    coord = Coordinator.open(ws.root)
    coord.agents.register("a1")
    coord.tasks.create("t", id="t1")
    coord.tasks.claim("t1", agent="a1", lease_seconds=3600)
    coord.events.emit("ch", "tick")
    coord.contexts.put("p", "d", {"a": 1})
    coord.events.ack("ch", "me", 1)
    return coord


#: Writes that must fail cleanly on a full or read-only disk: (name, API call, CLI argv).
WRITES: list[tuple[str, Callable[[Coordinator], Any], list[str]]] = [
    (
        "progress",
        lambda c: c.tasks.progress("t1", agent="a1", percent=5, message="x" * 3000),
        ["task", "progress", "t1", "--agent", "a1", "--percent", "5", "--message", "x" * 3000],
    ),
    ("create", lambda c: c.tasks.create("new " + "y" * 280), ["task", "create", "z" * 280]),
    (
        "heartbeat",
        lambda c: c.agents.heartbeat("a1", note="n" * 1900),
        ["agent", "heartbeat", "a1", "--note", "n" * 1900],
    ),
    (
        "emit",
        lambda c: c.events.emit("ch", "tick", {"pad": "p" * 3900}),
        ["event", "emit", "ch", "tick", "pad=" + "p" * 3900],
    ),
    (
        "context",
        lambda c: c.contexts.put("p", "d", {"pad": "q" * 5000}),
        ["context", "put", "p", "d", "--text", "q" * 5000, "--file", "DATA"],
    ),
]


def check_refused(
    coord: Coordinator,
    root: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    what: str,
) -> int:
    """Every write fails with exit 5 naming a path in the workspace; nothing changes."""
    before = snapshot(root)
    monkeypatch.setenv("COORD_DIR", root)
    capsys.readouterr()
    for name, call, argv in WRITES:
        with pytest.raises(BackendUnavailable) as info:
            call(coord)
        assert info.value.exit_code == 5 and root in info.value.message, (name, info.value)
        data = Path(root).parent.parent / "data.json"  # outside the full or read-only disk
        data.write_text('{"pad": 1}')
        assert main(["--json", *[str(data) if a == "DATA" else a for a in argv]]) == 5, name
        err = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]
        assert err["code"] in ("backend_unavailable", "lock_timeout"), err
        assert root in err["message"] and what in err["message"].lower(), err
        assert snapshot(root) == before, f"{name} changed a file"
        assert not [p for p in Path(root).rglob(".*.tmp-*")], f"{name} left a temp file"
    return 2 * len(WRITES)


def test_disk_full_gives_exit_5_and_keeps_the_previous_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COORD_FSYNC", "1")
    with tmpfs(tmp_path / "disk", "256k") as disk:
        root = str(disk / "coord")
        coord = board(root)
        filler = fill(disk)
        cases = check_refused(coord, root, monkeypatch, capsys, "no space")
        assert coord.tasks.get("t1").status == "in_progress"  # reads still work
        assert main(["task", "show", "t1"]) == 0
        filler.unlink()
        coord.tasks.progress("t1", agent="a1", percent=50)  # and writes again
        coord.events.emit("ch", "tock")
        assert [e.seq for e in coord.events.tail("ch")] == [1, 2]
        assert coord.doctor.check() == []
    report("disk", case="tmpfs full", cases=cases, violations=0)


def test_read_only_directory_gives_exit_5_and_reads_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "ro", "1m") as disk:
        root = str(disk / "coord")
        coord = board(root)
        assert _mount("-o", "remount,ro", str(disk))
        try:
            cases = check_refused(coord, root, monkeypatch, capsys, "read-only")
            assert main(["task", "show", "t1"]) == 0
            assert main(["task", "list"]) == 0
            assert [e.seq for e in coord.events.tail("ch")] == [1]
        finally:
            assert _mount("-o", "remount,rw", str(disk))
        coord.tasks.progress("t1", agent="a1", percent=50)
        assert coord.doctor.check() == []
    report("disk", case="tmpfs read-only", cases=cases, violations=0)


# -- injected errors at each step of an atomic write --------------------------------------------
STEPS = ["open", "write", "fsync", "replace"]
ERRORS = {"ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS, "EIO": errno.EIO, "EDQUOT": errno.EDQUOT}


@pytest.mark.parametrize("code", sorted(ERRORS))
@pytest.mark.parametrize("step", STEPS)
def test_injected_io_errors_keep_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, code: str
) -> None:
    monkeypatch.setenv("COORD_FSYNC", "1")
    root = str(tmp_path / "coord")
    coord = board(root)
    before = snapshot(root)
    real = getattr(os, step)
    inside = os.path.abspath(root)

    def failing(*args: Any, **kwargs: Any) -> Any:
        target = args[0] if step in ("open", "replace") else None
        ours = isinstance(target, str) and target.startswith(inside)
        if step in ("write", "fsync") or (ours and (step != "open" or ".tmp-" in str(target))):
            raise OSError(ERRORS[code], os.strerror(ERRORS[code]))
        return real(*args, **kwargs)

    monkeypatch.setattr(fsutil.os, step, failing)
    for name, call, _ in WRITES:
        with pytest.raises(BackendUnavailable) as info:
            call(coord)
        assert info.value.exit_code == 5 and inside in info.value.message, (name, info.value)
    monkeypatch.undo()
    assert snapshot(root) == before
    assert not list(Path(root).rglob(".*.tmp-*")), "a failed write left its temp file"
    coord.tasks.progress("t1", agent="a1", percent=50)
    assert coord.doctor.check() == []
    report("disk", case=f"injected {code} at {step}", cases=len(WRITES), violations=0)


def test_rotation_interrupted_by_a_full_disk_loses_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive is written before the live log is shortened: a failure in between leaves an
    event in both places (read once), never in neither."""
    root = str(tmp_path / "coord")
    init_workspace(root)
    Path(root, "config.json").write_text(json.dumps({"keep_events": 2}))
    coord = Coordinator.open(root)
    for i in range(2):
        coord.events.emit("ch", "tick", {"i": i})
    real = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if str(dst).endswith("events-ch.md"):  # the archive went through; the live log fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(fsutil.os, "replace", replace)
    with pytest.raises(BackendUnavailable):
        coord.events.emit("ch", "tick", {"i": 2})
    monkeypatch.undo()
    assert [e.seq for e in coord.events.tail("ch")] == [1, 2]
    assert coord.events.emit("ch", "tick", {"i": 3}).seq == 3
    assert [e.seq for e in coord.events.tail("ch")] == [1, 2, 3]
    assert coord.doctor.check() == []
