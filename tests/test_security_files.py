"""The workspace's files as an attack surface (SPEC section 16; issue 15, items 3a, 5 and 8).

Each test performs the attack itself: a credential another user tries to read, a FIFO, a link to
``/dev/zero`` or to a victim file, a directory or a huge sparse file planted where the store
reads a record, a workspace directory replaced by a link elsewhere, and a Unix group sharing one
workspace across uids (those tests drop privileges in a child and need root; under ``CI=true``
they run as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentcoord import fs
from agentcoord.cli.main import main
from agentcoord.workspace import has_credential, record_backend

from .conftest import dead_pid
from .redis_server import redis_server_fixture

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .redis_server import RedisServer

secure_redis = redis_server_fixture("secure_redis", password="s3cret-pw")
secure_unix = redis_server_fixture("secure_unix", password="s3cret-pw", unix=True)

GID = 40000  # the shared group: no /etc/group entry needed
MEMBER, OTHER_MEMBER, OUTSIDER = 40001, 40002, 40003
SRC = str(Path(__file__).resolve().parents[1] / "src")

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to run commands as other uids (setuid in a child)"
)


# -- helpers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def shared_tmp() -> Iterator[Path]:
    """A temp dir every uid can reach (pytest's tmp_path parents are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="coord-sec-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _reachable(path: str) -> bool:
    """Whether a uid outside every group of ``path`` and its parents can execute it."""
    real = os.path.realpath(path)
    if not os.stat(real).st_mode & stat.S_IXOTH:
        return False
    parent = os.path.dirname(real)
    while True:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
        if parent == os.path.dirname(parent):
            return True
        parent = os.path.dirname(parent)


def _interpreter() -> str:
    """A Python of this version that other uids can run (this one may live under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(version), f"/usr/bin/{version}"):
        if candidate and os.path.exists(candidate) and _reachable(candidate):
            return candidate
    pytest.fail(f"no {version} that other uids can run (CI runs this as root: install one)")


def run_as(
    uid: int | None,
    root: str | Path,
    *args: str,
    gid: int = GID,
    groups: tuple[int, ...] = (GID,),
    env: dict[str, str] | None = None,
) -> Any:
    """``coord --dir ROOT ARGS`` as ``uid`` (``gid``, with ``groups``; None: as this user),
    with a timeout: a hang is a failure, never a stuck suite."""
    import site

    # This venv's packages (redis) after the other interpreter's own standard library.
    paths = [SRC, *site.getsitepackages()]
    code = f"import sys; sys.path[1:1] = {paths!r}; from agentcoord.cli.main import main; "
    code += "sys.exit(main(sys.argv[1:]))"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
        "COORD_FSYNC": "0",
        "LANG": "C.UTF-8",
        **(env or {}),
    }

    def drop() -> None:
        if uid is not None:
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)

    return subprocess.run(
        [sys.executable if uid is None else _interpreter(), "-c", code, "--dir", str(root), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=drop,
        check=False,
        cwd="/",
    )


class Hang(Exception):
    pass


def coord(root: str | Path, *args: str, seconds: int = 10) -> tuple[int, str]:
    """``coord --dir ROOT ARGS`` in this process; (exit code, stderr + stdout). A call running
    after ``seconds`` is interrupted (:class:`Hang`): a blocking ``open`` of a FIFO included."""
    import io

    def alarm(signum: int, frame: object) -> None:
        raise Hang(" ".join(args))

    err, out = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["--dir", str(root), *args])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, err.getvalue() + out.getvalue()


# -- 3a. credentials ---------------------------------------------------------------------------
CREDENTIAL_URLS = [
    "redis://:secret@127.0.0.1:6399/0",
    "redis://alice:secret@127.0.0.1:6399/0",
    "rediss://alice:secret@example.net:6380/1",
    "unix://:secret@/run/redis.sock?db=0",
    "unix:///run/redis.sock?password=secret",
    "redis://127.0.0.1:6399/0?db=0&password=secret",
]


@pytest.mark.parametrize("url", CREDENTIAL_URLS)
def test_a_config_holding_a_credential_is_0600(tmp_path: Path, url: str) -> None:
    assert has_credential(url)
    record_backend(str(tmp_path), "redis", url)
    path = tmp_path / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)  # loosened by hand: the next rewrite tightens it again
    record_backend(str(tmp_path), "redis", url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_config_without_a_credential_stays_readable(tmp_path: Path) -> None:
    for url in ("redis://127.0.0.1:6399/0", "unix:///run/redis.sock?db=2"):
        assert not has_credential(url)
        record_backend(str(tmp_path), "redis", url)
        assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o644 & ~fs.umask()


def test_the_credential_is_never_in_a_wider_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file is created with the final mode: no moment when it is 0644."""
    seen: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *a: Any, **k: Any) -> int:
        if flags & os.O_CREAT and "config.json" in str(path):
            seen.append(mode)
        return real_open(path, flags, mode, *a, **k)

    monkeypatch.setattr(os, "open", spy)
    record_backend(str(tmp_path), "redis", CREDENTIAL_URLS[0])
    assert seen == [0o600]


@needs_root
def test_another_user_cannot_read_the_password_init_recorded(secure_redis: RedisServer) -> None:
    with shared_tmp() as base:
        root = base / "ws"
        done = run_as(None, root, "init", "--url", secure_redis.url)
        assert done.returncode == 0, done.stderr
        config = root / "config.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        steal = subprocess.run(
            ["cat", str(config)],
            capture_output=True,
            text=True,
            preexec_fn=lambda: (os.setgroups([]), os.setgid(GID), os.setuid(OUTSIDER)),
            check=False,
        )
        assert steal.returncode != 0 and "s3cret-pw" not in steal.stdout
        assert "Permission denied" in steal.stderr


def test_init_records_a_unix_socket_password_0600(secure_unix: RedisServer, tmp_path: Path) -> None:
    code, err = coord(tmp_path / "ws", "init", "--url", secure_unix.url)
    assert code == 0, err
    assert stat.S_IMODE((tmp_path / "ws" / "config.json").stat().st_mode) == 0o600


def test_doctor_finds_a_readable_credential_and_fix_tightens_it(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert coord(root, "init")[0] == 0
    config = root / "config.json"
    # Written by hand (a Redis URL in a markdown workspace is itself exit 6: use "monitor").
    config.write_text(json.dumps({"backend": "redis", "url": CREDENTIAL_URLS[1]}))
    os.chmod(config, 0o644)
    from agentcoord.workspace import Workspace

    found = Workspace(str(root)).check_files()
    assert [v.kind for v in found] == ["credentials"]
    assert "everyone can read it" in found[0].message and "secret" not in found[0].message
    assert Workspace(str(root)).repair_files(found)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert Workspace(str(root)).check_files() == []
    os.chmod(config, 0o640)
    assert "its group can read it" in Workspace(str(root)).check_files()[0].message


def test_doctor_reports_the_credential_through_the_cli(
    secure_redis: RedisServer, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    assert coord(root, "init", "--url", secure_redis.url)[0] == 0
    secure_redis_clear(secure_redis.url)
    os.chmod(root / "config.json", 0o644)
    code, _ = coord(root, "doctor")
    assert code == 1  # a finding, not a crash
    code, err = coord(root, "doctor", "--fix")
    assert code == 0, err
    assert stat.S_IMODE((root / "config.json").stat().st_mode) == 0o600


def secure_redis_clear(url: str) -> None:
    """Start from an empty keyspace (the server is shared by the session)."""
    from agentcoord.api import open_store

    store = open_store(url)
    try:
        store.clear()
    finally:
        store.close()


# -- 5. special files where records are read -------------------------------------------------
@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """A workspace with every kind of file: tasks, an agent, events with an archive segment,
    cursors, counters, a context, archived task and agent, locks and the index."""
    base = Path(tempfile.mkdtemp(prefix="coord-tmpl-"))
    root = base / "ws"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COORD_FSYNC", "0")
        mp.delenv("COORD_URL", raising=False)
        mp.delenv("COORD_DIR", raising=False)
        assert coord(root, "init")[0] == 0
        (root / "config.json").write_text(json.dumps({"keep_events": 2}))
        steps = [
            ("agent", "register", "a1"),
            *[("task", "create", f"t{i}") for i in range(3)],
            ("task", "claim", "--agent", "a1"),
            ("task", "complete", "1", "--agent", "a1", "--result", "x"),
            *[("event", "emit", "team", "ping", f"n={i}") for i in range(5)],
            ("event", "tail", "team", "--consumer", "c1"),
            ("cleanup", "--stale-hours", "0"),
            ("agent", "register", "a2"),
        ]
        for step in steps:
            code, err = coord(root, *step)
            assert code == 0, (step, err)
        with open(root / "context.json", "w") as fh:
            fh.write("{}")
        assert coord(root, "context", "put", "p", "d", "--file", str(root / "context.json"))[0] == 0
        os.unlink(root / "context.json")
    yield root
    shutil.rmtree(base, ignore_errors=True)


def _archive_segment(root: Path) -> str:
    return "archive/" + next(n for n in os.listdir(root / "archive") if n.startswith("events-"))


#: What each kind of file is, in the template.
TARGETS = {
    "task": "task-2.md",
    "new-task": "task-77.md",
    "agent": "agent-a2.md",
    "context": "context-p-d.md",
    "events": "events-team.md",
    "archive-segment": None,  # found in the template
    "archived-task": "archive/task-1.md",
    "index": ".state/index-task.json",
    "counter": ".state/counter-task",
    "cursors": ".state/cursors-team.json",
    "config": "config.json",
    "lock": ".locks/task-2.lock",
    "counter-lock": ".locks/counter-task.lock",
}
ATTACKS = ("fifo", "dev-zero", "victim-link", "directory", "sparse")
COMMANDS = [
    ("task", "list"),
    ("task", "claim", "--agent", "a2"),
    ("status",),
    ("task", "create", "new"),
    ("event", "emit", "team", "x"),
    ("event", "tail", "team", "--consumer", "c1"),
    ("cleanup",),
    ("doctor",),
    ("doctor", "--fix"),
]


def _plant(path: Path, attack: str, victim: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if attack == "fifo":
        os.mkfifo(path)
    elif attack == "dev-zero":
        path.symlink_to("/dev/zero")
    elif attack == "victim-link":
        path.symlink_to(victim)
    elif attack == "directory":
        path.mkdir()
    else:
        with open(path, "wb") as fh:
            fh.truncate(2**40)  # 1 TiB of nothing: reading it whole never ends


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("target", list(TARGETS))
def test_a_planted_special_file_never_hangs_follows_or_is_read_whole(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, attack: str
) -> None:
    monkeypatch.setenv("COORD_FSYNC", "0")
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    rel = TARGETS[target] or _archive_segment(template)
    victim = tmp_path / "victim.md"
    victim.write_text("VICTIM\n")
    _plant(root / rel, attack, victim)
    named = False
    for command in COMMANDS:
        try:
            code, err = coord(root, *command)
        except Hang:
            pytest.fail(f"coord {' '.join(command)} hangs on a {attack} at {rel}")
        allowed = {0, 1, 6} if command[0] == "doctor" else {0, 6}
        assert code in allowed, (command, code, err)
        assert "Traceback" not in err
        if code == 6:
            assert f"{root / rel}:1: " in err, (command, err)  # the path, and why
        named = named or str(root / rel) in err
        assert victim.read_text() == "VICTIM\n" and not victim.is_symlink()
    if target != "index" and not (attack == "sparse" and "lock" in target):
        assert named, f"no command named the {attack} at {rel}"  # (a big lock file is fine)
    if attack != "sparse" and target != "index":
        # Reported, never replaced by a write path (SPEC section 3); the index is a cache.
        assert not stat.S_ISREG(os.lstat(root / rel).st_mode)


def test_a_fifo_counter_does_not_hang_doctor(template: Path, tmp_path: Path) -> None:
    """Before: ``doctor`` opened ``.state/counter-*`` with a plain ``open`` and waited on a
    FIFO for ever."""
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    _plant(root / ".state" / "counter-task", "fifo", tmp_path / "x")
    code, err = coord(root, "doctor", "--json")
    assert code == 6 or code == 1
    code, err = coord(root, "task", "create", "again")
    assert code == 6 and "counter-task:1: is not a regular file (a FIFO)" in err


def test_a_huge_archive_segment_is_corrupt_not_read_backwards_forever(
    template: Path, tmp_path: Path
) -> None:
    """Before: the archive's tail search re-joined every window it read (quadratic) and read
    the whole file when no block ended in it: a sparse segment hung ``event emit``."""
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    _plant(root / _archive_segment(template), "sparse", tmp_path / "x")
    code, err = coord(root, "event", "emit", "team", "x")
    assert code == 6 and f"no complete event block in its last {fs.MAX_READ:,} bytes" in err


@pytest.mark.parametrize("sub", ["archive", ".locks", ".state"])
def test_a_workspace_directory_linked_elsewhere_is_never_written_through(
    template: Path, tmp_path: Path, sub: str
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(root / sub, elsewhere)
    orphan = elsewhere / f".task-9.md{fs.TMP_MARK}{dead_pid()}-abcd1234"
    orphan.write_text("not ours")
    os.utime(orphan, (1, 1))  # old, of a dead writer: cleanup would remove it here
    shutil.rmtree(root / sub)
    (root / sub).symlink_to(elsewhere)

    def snapshot() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(elsewhere.iterdir())}

    before = snapshot()
    writes = {
        "archive": ("cleanup", "--stale-hours", "0"),
        ".locks": ("task", "create", "new"),
        ".state": ("task", "create", "new"),
    }
    code, err = coord(root, *writes[sub])
    assert code == 6 and f"{root / sub}:1: is a symbolic link" in err
    for command in [*COMMANDS, ("task", "complete", "2", "--agent", "a2")]:
        coord(root, *command)
    assert snapshot() == before
    code, _ = coord(root, "doctor")
    assert code == 1  # the link is a finding


def test_cleanup_removes_a_temp_file_link_never_what_it_points_to(
    template: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    victim = tmp_path / "victim"
    victim.write_text("VICTIM\n")
    link = root / f".task-2.md{fs.TMP_MARK}{dead_pid()}-abcd1234"
    link.symlink_to(victim)
    os.utime(link, (1, 1), follow_symlinks=False)
    assert coord(root, "cleanup")[0] == 0
    assert coord(root, "doctor", "--fix")[0] in (0, 1)
    assert victim.read_text() == "VICTIM\n"


# -- 8. a workspace shared by a Unix group ----------------------------------------------------
def _modes(base: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, base)] = os.lstat(path).st_mode
    return out


@needs_root
def test_a_group_shares_a_workspace() -> None:
    with shared_tmp() as base:
        project = base / "proj"
        project.mkdir(mode=0o755)
        root = project / ".claude" / "coordination"
        made = run_as(None, root, "init", "--shared-group", str(GID))
        assert made.returncode == 0, made.stderr
        assert f"with group {GID}" in made.stdout

        def ok(uid: int, *args: str) -> str:
            done = run_as(uid, root, *args)
            assert done.returncode == 0, (uid, args, done.stderr)
            return str(done.stdout)

        ok(MEMBER, "task", "create", "shared work")
        ok(OTHER_MEMBER, "agent", "register", "bob")
        ok(OTHER_MEMBER, "task", "claim", "1", "--agent", "bob")
        ok(OTHER_MEMBER, "task", "complete", "1", "--agent", "bob", "--result", "done")
        ok(MEMBER, "event", "emit", "team", "hello")
        ok(MEMBER, "cleanup", "--stale-hours", "0")
        ok(MEMBER, "doctor")
        # Whoever wrote last, every entry keeps the group's modes, whatever the umask.
        modes = _modes(project / ".claude")
        assert modes, "nothing written"
        for name, mode in modes.items():
            assert not mode & stat.S_IWOTH, f"{name} is world-writable ({mode:o})"
            if stat.S_ISDIR(mode):
                assert stat.S_IMODE(mode) == 0o2775, (name, oct(mode))
            elif stat.S_ISREG(mode):
                want = 0o660 if name.endswith(".lock") else 0o664  # locks: no outsider holds one
                assert stat.S_IMODE(mode) == want, (name, oct(mode))
        assert any(n.startswith("coordination/.locks/") for n in modes)
        assert any(n.startswith("coordination/archive/task-") for n in modes)
        found = subprocess.run(
            ["find", str(base), "-perm", "-o+w"], capture_output=True, text=True, check=True
        )
        assert found.stdout == ""
        # Someone outside the group cannot write.
        denied = run_as(OUTSIDER, root, "task", "create", "intruder", gid=OUTSIDER, groups=())
        assert denied.returncode == 5, denied.stderr
        assert "Permission denied" in denied.stderr


@needs_root
def test_init_converts_an_existing_workspace_and_says_so() -> None:
    with shared_tmp() as base:
        root = base / "ws"
        assert run_as(None, root, "init").returncode == 0
        assert run_as(None, root, "task", "create", "before").returncode == 0
        denied = run_as(MEMBER, root, "task", "create", "x")
        assert denied.returncode == 5 and "Permission denied" in denied.stderr
        made = run_as(None, root, "--json", "init", "--shared-group", str(GID))
        assert made.returncode == 0, made.stderr
        data = json.loads(made.stdout)
        assert data["shared_group"] == GID
        assert any("2775" in a and "664" in a for a in data["actions"])
        assert run_as(MEMBER, root, "task", "create", "after").returncode == 0
        again = run_as(None, root, "--json", "init", "--shared-group", str(GID))
        assert json.loads(again.stdout)["actions"] == []


@needs_root
def test_a_shared_credential_is_readable_by_the_group_only(secure_redis: RedisServer) -> None:
    with shared_tmp() as base:
        root = base / "ws"
        made = run_as(None, root, "init", "--shared-group", str(GID), "--url", secure_redis.url)
        assert made.returncode == 0, made.stderr
        config = root / "config.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o640
        assert config.stat().st_gid == GID
        member = run_as(MEMBER, root, "doctor")
        assert "credentials" not in member.stdout + member.stderr
        outsider = subprocess.run(
            ["cat", str(config)],
            capture_output=True,
            preexec_fn=lambda: (os.setgroups([]), os.setgid(OUTSIDER), os.setuid(OUTSIDER)),
            check=False,
        )
        assert outsider.returncode != 0


@pytest.mark.parametrize("group", ["nosuchgroup", "-5", "99999999999"])
def test_init_with_an_unknown_group_is_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], group: str
) -> None:
    root = tmp_path / "ws"
    assert main(["--dir", str(root), "init", "--shared-group", group]) == 2
    assert "--shared-group" in capsys.readouterr().err
    assert not root.exists()


def test_a_one_user_workspace_stays_as_strict_as_before(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert coord(root, "init")[0] == 0
    assert coord(root, "task", "create", "t")[0] == 0
    for name, mode in _modes(root).items():
        if stat.S_ISDIR(mode):
            assert stat.S_IMODE(mode) == 0o755 & ~fs.umask(), name
        elif name.endswith(".lock"):
            assert stat.S_IMODE(mode) == 0o600 & ~fs.umask(), name
        elif stat.S_ISREG(mode):
            assert stat.S_IMODE(mode) == 0o644 & ~fs.umask(), name


# -- a credential never has to be on a command line (SPEC 16) ----------------------------------
def test_init_reads_the_url_from_stdin(
    tmp_path: Path,
    secure_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    root = tmp_path / "ws"
    monkeypatch.setattr(sys, "stdin", io.StringIO(secure_redis.url + "\n"))
    assert main(["--dir", str(root), "init", "--url", "-"]) == 0
    err = capsys.readouterr().err
    assert "process list" not in err
    config = root / "config.json"
    assert json.loads(config.read_text())["url"] == secure_redis.url
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    # The global option reads stdin the same way, for any command.
    monkeypatch.setattr(sys, "stdin", io.StringIO(secure_redis.url + "\n"))
    assert main(["--url", "-", "--dir", str(root), "task", "create", "from stdin"]) == 0


def test_a_credential_spelt_on_the_command_line_is_warned_about(
    tmp_path: Path, secure_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "ws"
    assert main(["--dir", str(root), "init", "--url", secure_redis.url]) == 0
    err = capsys.readouterr().err
    assert "process list" in err and "--url -" in err
    assert "s3cret-pw" not in err  # the warning never repeats the secret
    assert main(["--url", secure_redis.url, "--dir", str(root), "status"]) == 0
    assert "process list" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["init", "--url", "-"], ["--url", "-", "status"]])
def test_an_empty_url_on_stdin_is_exit_2(
    tmp_path: Path,
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert main(["--dir", str(tmp_path / "ws"), *argv]) == 2
    assert "stdin" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


@needs_root
def test_a_member_cannot_stop_another_members_timer_and_it_keeps_running() -> None:
    """``timer stop`` by a member who may not signal the timer is exit 4 naming its owner; the
    timer keeps running and keeps its pid file (it used to say "stopped" and drop it)."""
    import site

    pythonpath = {"PYTHONPATH": os.pathsep.join([SRC, *site.getsitepackages()])}
    with shared_tmp() as base:
        root = base / "ws"
        assert run_as(None, root, "init", "--shared-group", str(GID)).returncode == 0
        started = run_as(
            MEMBER, root, "--json", "timer", "start", "--interval", "60", env=pythonpath
        )
        assert started.returncode == 0, started.stderr
        pid = json.loads(started.stdout)["pid"]
        try:
            other = run_as(OTHER_MEMBER, root, "timer", "stop", env=pythonpath)
            assert other.returncode == 4, other.stdout + other.stderr
            assert f"uid {MEMBER}" in other.stderr
            assert fs.pid_alive(pid)
            status = run_as(MEMBER, root, "--json", "timer", "status", env=pythonpath)
            assert json.loads(status.stdout)[0]["running"] is True, status.stdout
            mine = run_as(MEMBER, root, "timer", "stop", env=pythonpath)
            assert mine.returncode == 0, mine.stderr
        finally:
            if fs.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


# -- advA 1: `init --shared-group` as root walks by descriptor, never by path ------------------
def _victim(base: Path) -> tuple[Path, dict[str, tuple[int, int, int]]]:
    """A root-owned tree outside the workspace (0700 directory, 0600 file), and its state."""
    victim = base / "victim"
    (victim / "sub").mkdir(parents=True)
    for path in (victim / "secret", victim / "sub" / "secret"):
        path.write_text("root secret\n")
        os.chmod(path, 0o600)
    os.chmod(victim / "sub", 0o700)
    os.chmod(victim, 0o700)
    return victim, _state(victim)


def _state(tree: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for path in [tree, *tree.rglob("*")]:
        st = os.lstat(path)
        out[str(path)] = (st.st_mode, st.st_uid, st.st_gid)
    return out


def _no_path_based_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a path-based chown/chmod: {args}")

    for name in ("chown", "lchown", "chmod", "lchmod"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)


@needs_root
def test_sharing_never_follows_a_planted_link_special_file_or_foreign_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with shared_tmp() as base:
        victim, before = _victim(base)
        root = base / "proj" / ".claude" / "coordination"
        assert coord(root, "init")[0] == 0
        assert coord(root, "task", "create", "t")[0] == 0
        shutil.rmtree(root / ".state")
        (root / ".state").symlink_to(victim)  # a layout directory linked elsewhere
        (root / "evil").symlink_to(victim)  # an unknown link
        (root / "deep" / "target").mkdir(parents=True)  # a directory the workspace never makes
        (root / "deep" / "target" / "x").write_text("x")
        (root / "task-8.md").symlink_to(victim / "secret")
        os.link(victim / "secret", root / "task-9.md")  # a hard link to the victim
        os.mkfifo(root / "task-7.md")
        (root.parent / ".coordination-timer.pid").symlink_to(victim / "secret")
        _no_path_based_changes(monkeypatch)
        code, out = coord(root, "--json", "init", "--shared-group", str(GID))
        assert code == 0, out
        assert _state(victim) == before
        actions = " ".join(json.loads(out[out.index("{") :])["actions"])
        for name in (".state", "evil", "deep", "task-8.md", "task-9.md", "task-7.md"):
            assert f"{root / name} (" in actions, name
        assert str(root.parent / ".coordination-timer.pid") in actions
        assert stat.S_IMODE(os.lstat(root / "deep").st_mode) != 0o2775  # not descended
        assert os.lstat(root / "deep" / "target" / "x").st_gid != GID
        assert os.stat(root / "task-1.md").st_gid == GID
        assert stat.S_IMODE(os.stat(root / ".locks" / "task-1.lock").st_mode) == 0o660


@needs_root
@pytest.mark.parametrize("sub", [".state", "archive", ".locks"])
def test_sharing_survives_a_directory_swapped_for_a_link_between_listing_and_descending(
    monkeypatch: pytest.MonkeyPatch, sub: str
) -> None:
    """The race of FINDINGS item 1 made deterministic: right after the walk lists the
    workspace directory, ``sub`` is renamed away and a link to a root-only tree put there."""
    with shared_tmp() as base:
        victim, before = _victim(base)
        root = base / "ws"
        assert coord(root, "init")[0] == 0
        assert coord(root, "task", "create", "t")[0] == 0
        assert coord(root, "cleanup", "--stale-hours", "0")[0] == 0
        real_scandir = os.scandir
        swapped: list[bool] = []

        class Listing:
            def __init__(self, entries: list[os.DirEntry[str]]) -> None:
                self.entries = entries

            def __enter__(self) -> list[os.DirEntry[str]]:
                return self.entries

            def __exit__(self, *exc: object) -> None:
                pass

        def racing_scandir(path: Any = ".") -> Any:
            with real_scandir(path) as it:
                entries = list(it)
            if not swapped and any(e.name == sub for e in entries):
                os.rename(root / sub, root / f"{sub}.old")
                (root / sub).symlink_to(victim)
                swapped.append(True)
            return Listing(entries)

        _no_path_based_changes(monkeypatch)
        monkeypatch.setattr(os, "scandir", racing_scandir)
        from agentcoord.workspace import Workspace, share_with_group

        actions = share_with_group(Workspace(str(root)), GID)
        monkeypatch.undo()
        assert swapped
        assert _state(victim) == before
        assert any(f"{root / sub} (no longer a directory" in a for a in actions), actions


_SWAPPER = """
import os, sys, time
root, victim, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.monotonic() + seconds
swaps = 0
while time.monotonic() < end:
    for sub in (".state", "archive"):
        here, away = os.path.join(root, sub), os.path.join(root, sub + ".away")
        try:
            os.rename(here, away)
            os.symlink(victim, here)
            time.sleep(0.0005)
            os.unlink(here)
            os.rename(away, here)
            swaps += 1
        except OSError:
            pass
print(swaps)
"""


@needs_root
def test_a_member_swapping_directories_while_root_converts_never_reaches_outside() -> None:
    """FINDINGS item 1 as a race: a group member swaps ``.state/`` and ``archive/`` for links
    to a root-only tree as fast as they can while root re-runs ``init --shared-group``."""
    with shared_tmp() as base:
        victim, before = _victim(base)
        root = base / "ws"
        made = run_as(None, root, "init", "--shared-group", str(GID))
        assert made.returncode == 0, made.stderr
        assert run_as(MEMBER, root, "task", "create", "t").returncode == 0
        assert run_as(MEMBER, root, "event", "emit", "team", "x").returncode == 0
        swapper = subprocess.Popen(
            [_interpreter(), "-c", _SWAPPER, str(root), str(victim), "4"],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: (os.setgroups([GID]), os.setgid(GID), os.setuid(MEMBER)),  # noqa: PLW1509
            cwd="/",
        )
        try:
            runs = 0
            while swapper.poll() is None and runs < 400:
                code, out = coord(root, "init", "--shared-group", str(GID))
                assert code in (0, 5, 6), out  # a swapped directory may be refused: fine
                assert "Traceback" not in out
                runs += 1
                assert _state(victim) == before, f"run {runs}: root changed the victim"
        finally:
            out, _ = swapper.communicate(timeout=30)
        assert int(out) > 0, "the member never swapped"
        assert _state(victim) == before


# -- advA 2: the workspace directory (or .claude/) as a link someone else planted -------------
_EVERY_COMMAND = [
    ("init",),
    ("task", "create", "hello"),
    ("task", "list"),
    ("status",),
    ("event", "emit", "team", "x"),
    ("metrics",),
    ("cleanup",),
    ("timer", "status"),
]


@pytest.mark.parametrize("writable", [0o775, 0o2775, 0o777, 0o1777], ids=oct)
@pytest.mark.parametrize("link", ["coordination", ".claude"])
def test_a_workspace_link_in_a_directory_others_can_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str, writable: int
) -> None:
    monkeypatch.setenv("COORD_FSYNC", "0")
    monkeypatch.delenv("COORD_DIR", raising=False)
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    if link == "coordination":
        elsewhere.mkdir()
        (project / ".claude" / "coordination").symlink_to(elsewhere)
        os.chmod(project / ".claude", writable)
        if writable & stat.S_ISVTX:  # sticky: refused only when someone else owns the link
            os.lchown(project / ".claude" / "coordination", OUTSIDER, OUTSIDER)
    else:
        (elsewhere / "coordination").mkdir(parents=True)
        (project / ".claude").rmdir()
        (project / ".claude").symlink_to(elsewhere)
        os.chmod(project, writable)
        if writable & stat.S_ISVTX:
            os.lchown(project / ".claude", OUTSIDER, OUTSIDER)
    named = str(project / ".claude" / ("coordination" if link == "coordination" else ""))
    named = named.rstrip("/")
    root = project / ".claude" / "coordination"
    for command in _EVERY_COMMAND:
        code, out = coord(root, *command)  # --dir through the link
        assert code == 6, (command, out)
        assert f"{named}:1: is a symbolic link in a directory others can write" in out
        monkeypatch.chdir(project)  # found from the working directory, as agents do
        code = main(list(command))
        assert code == 6, command
    assert [p.name for p in elsewhere.rglob("*")] == ([] if link == "coordination" else
                                                      ["coordination"])  # fmt: skip


def test_a_workspace_link_the_user_made_in_their_own_directory_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COORD_FSYNC", "0")
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    os.chmod(project / ".claude", 0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / ".claude" / "coordination").symlink_to(elsewhere)
    root = project / ".claude" / "coordination"
    for command in _EVERY_COMMAND:
        code, out = coord(root, *command)
        assert code == 0, (command, out)
    assert (elsewhere / "task-1.md").exists()


def test_init_through_a_planted_link_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    os.chmod(tmp_path / "shared", 0o2775)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "shared" / "ws").symlink_to(elsewhere)
    code, out = coord(tmp_path / "shared" / "ws", "init", "--shared-group", str(os.getgid()))
    assert code == 6 and "is a symbolic link in a directory others can write" in out
    assert list(elsewhere.iterdir()) == []


def test_demo_keep_refuses_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "kept").symlink_to(target)
    assert main(["demo", "--keep", str(tmp_path / "kept"), "--no-dashboard"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert list(target.iterdir()) == []


# -- advA 3: nobody else can hold a lock -------------------------------------------------------
_HOLD = """
import fcntl, os, sys
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("HELD", path)
    except OSError as exc:
        print("DENIED", exc.errno, path)
sys.stdout.flush()
sys.stdin.read()
"""


@needs_root
@pytest.mark.parametrize("shared", [False, True], ids=["one-user", "shared"])
def test_an_outsider_cannot_hold_a_lock_and_block_the_owner(shared: bool) -> None:
    import errno

    from agentcoord.timer.files import acquire_lock

    with shared_tmp() as base:
        root = base / "proj" / ".claude" / "coordination"
        init = ("init", "--shared-group", str(GID)) if shared else ("init",)
        assert coord(root, *init)[0] == 0
        assert coord(root, "task", "create", "t")[0] == 0
        timer_lock = root.parent / ".coordination-timer.lock"
        fd = acquire_lock(str(timer_lock))
        assert fd is not None
        os.close(fd)
        locks = [*sorted((root / ".locks").iterdir()), timer_lock]
        want = 0o660 if shared else 0o600
        for lock in locks:
            assert stat.S_IMODE(lock.stat().st_mode) == want, lock
        holder = subprocess.Popen(
            [_interpreter(), "-c", _HOLD, *map(str, locks)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: (os.setgroups([]), os.setgid(OUTSIDER), os.setuid(OUTSIDER)),  # noqa: PLW1509
            cwd="/",
        )
        try:
            assert holder.stdout is not None
            lines = [holder.stdout.readline().split() for _ in locks]
            assert all(line[:2] == ["DENIED", str(errno.EACCES)] for line in lines), lines
            # While that user runs, the owner's writes and timer go on.
            code, out = coord(root, "task", "create", "t2", seconds=20)
            assert code == 0, out
            code, out = coord(root, "task", "claim", "--agent", "a1", "--register", seconds=20)
            assert code == 0, out
            fd = acquire_lock(str(timer_lock))
            assert fd is not None
            os.close(fd)
        finally:
            holder.communicate("", timeout=30)


def test_an_older_world_readable_lock_is_tightened(tmp_path: Path) -> None:
    from agentcoord.timer.files import acquire_lock

    root = tmp_path / "proj" / ".claude" / "coordination"
    assert coord(root, "init")[0] == 0
    assert coord(root, "task", "create", "t")[0] == 0
    timer_lock = root.parent / ".coordination-timer.lock"
    timer_lock.write_text("")
    locks = [*(root / ".locks").iterdir(), timer_lock]
    for lock in locks:  # as an older version left them
        os.chmod(lock, 0o644)
    assert coord(root, "task", "create", "t2")[0] == 0  # counter-task.lock
    assert coord(root, "task", "claim", "1", "--agent", "a1", "--register")[0] == 0  # task-1.lock
    fd = acquire_lock(str(timer_lock))
    assert fd is not None
    os.close(fd)
    for lock in locks:
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600, lock


# -- advA 8: a special file in a listing is reported like a corrupt file --------------------
@pytest.mark.parametrize(
    ("rel", "commands"),
    [
        ("events-team.md", [("event", "tail", "team"), ("event", "tail", "team", "-n", "2")]),
        ("task-2.md", [("task", "list"), ("--json", "task", "list"), ("status",)]),
        ("agent-a2.md", [("agent", "list"), ("status",)]),
        (".state/counter-task", [("task", "create", "x"), ("doctor",)]),
        ("metrics-performance.md", [("doctor",)]),
    ],
)
def test_a_special_file_is_reported_exactly_like_a_corrupt_one(
    template: Path, tmp_path: Path, rel: str, commands: list[tuple[str, ...]]
) -> None:
    results = {}
    for kind in ("corrupt", "fifo"):
        root = tmp_path / kind
        shutil.copytree(template, root, symlinks=True)
        target = root / rel
        if target.exists():
            target.unlink()
        if kind == "fifo":
            os.mkfifo(target)
        else:
            target.write_text("garbage\n")
        for command in commands:
            try:
                code, out = coord(root, *command, seconds=2)  # at once: never a wait
            except Hang:
                pytest.fail(f"coord {' '.join(command)} waits on a FIFO at {rel}")
            assert "Traceback" not in out
            results[kind, command] = (code, str(target) in out)
    for command in commands:
        fifo, corrupt = results["fifo", command], results["corrupt", command]
        assert fifo == corrupt, (command, "fifo", fifo, "corrupt", corrupt)
        assert fifo[1], f"{command} does not name {rel}"


def test_event_tail_of_a_fifo_is_exit_6_at_once(template: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(template, root, symlinks=True)
    (root / "events-team.md").unlink()
    os.mkfifo(root / "events-team.md")
    code, out = coord(root, "event", "tail", "team", seconds=2)
    assert code == 6 and f"{root / 'events-team.md'}:1: is not a regular file (a FIFO)" in out
