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
                assert stat.S_IMODE(mode) == 0o664, (name, oct(mode))
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
