"""Redis going away (issue 6 "Must show", SPEC sections 2 and 9): commands fail with exit 5 and
a clear message naming the URL (password hidden); nothing falls back to files (no split-brain);
with AOF ``appendfsync always`` every acknowledged write survives a crash of the server; short
outages are ridden out by the bounded retries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from agentcoord.core.models import Task
from agentcoord.errors import BackendUnavailable
from agentcoord.workspace import init_workspace, load_config

from .conftest import COORD
from .redis_server import RedisServer, free_port, require_binary

pytestmark = pytest.mark.redis

REPO = str(Path(__file__).resolve().parent.parent)
PASSWORD = "pw-Secr3t"


class DurableRedis(RedisServer):
    """A throw-away server with AOF on and fsync before every reply, restartable on the same
    port and directory (so a restart replays what it acknowledged)."""

    def start(self, timeout: float = 15.0) -> DurableRedis:
        if not self.port:
            self.port = free_port()
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            self.dir,
            "--daemonize",
            "no",
            "--logfile",
            os.path.join(self.dir, "redis.log"),
            "--requirepass",
            PASSWORD,
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not self._wait_ready(timeout):
            raise RuntimeError(f"redis-server did not start; log:\n{self.log()}")
        return self

    def crash(self) -> None:
        """SIGKILL, by pid: no shutdown hook gets to flush anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def durable() -> DurableRedis:
    require_binary()
    server = DurableRedis(password=PASSWORD).start()
    yield server
    server.stop()


def cli(*args: str, cwd: str | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ, COORD_FSYNC="0")
    env.pop("COORD_URL", None)
    env.pop("COORD_DIR", None)
    return subprocess.Popen(
        [*COORD, *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def assert_unavailable(code: int, err: str, url: str, as_json: bool = False) -> None:
    assert code == 5, err
    assert PASSWORD not in err
    masked = url.replace(PASSWORD, "***").split("?")[0]
    if as_json:
        error = json.loads(err.strip().splitlines()[-1])["error"]
        assert error["code"] == "backend_unavailable"
        assert error["url"].startswith(masked)
        assert error["reason"]
    else:
        # A credential spelt on the command line is warned about first (SPEC 16).
        lines = [ln for ln in err.splitlines() if not ln.startswith("coord: warning:")]
        err = "\n".join(lines)
        assert err.startswith("coord: error: Redis at " + masked), err
        assert "unreachable" in err


@pytest.mark.slow
def test_redis_stopped_mid_run_exit_5_then_nothing_acknowledged_is_lost(
    durable: DurableRedis, tmp_path: Path
) -> None:
    url = f"{durable.url}?workspace=f-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "ws"
    assert finish(cli("--dir", str(root), "init", "--url", url))[0] == 0
    assert load_config(str(root))["url"] == url
    before = files(root)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.workers_redis", "ack", url, f"w{i}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    acked: list[str] = []
    try:
        # Let both write for a while, then kill the server under them.
        assert workers[0].stdout is not None
        for line in workers[0].stdout:
            acked.append(line.split()[1])
            if len(acked) >= 100:
                break
        durable.crash()
        results = []
        for w in workers:
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
            lines = out.strip().splitlines()
            acked += [line.split()[1] for line in lines if line.startswith("ack ")]
            results.append(json.loads(lines[-1]))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    # The writers saw a clear exit-5 error, not a hang and not a switch to files.
    for result in results:
        assert (result["stopped"], result["exit"]) == ("backend_unavailable", 5)
        assert PASSWORD not in result["message"]
    # Every command fails the same way while Redis is down, from the config or from --url.
    procs = [
        cli("--dir", str(root), "task", "list"),
        cli("--dir", str(root), "--json", "task", "create", "while down"),
        cli("--url", url, "task", "list"),
        cli("--dir", str(root), "agent", "heartbeat", "w0"),
    ]
    outcomes = [finish(p) for p in procs]
    for i, (code, _out, err) in enumerate(outcomes):
        assert_unavailable(code, err, url, as_json=i == 1)
    assert files(root) == before  # no split-brain: not one file written
    # Restart on the same AOF: every acknowledged write is there.
    durable.start()
    code, out, err = finish(cli("--dir", str(root), "--json", "task", "list", "--limit", "100000"))
    assert code == 0, err
    listed = {t["id"] for t in json.loads(out)}
    assert len(acked) >= 100
    assert set(acked) <= listed
    assert files(root) == before


def test_init_with_unreachable_url_exits_5_and_records_nothing(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    fresh = tmp_path / "fresh"
    code, _, err = finish(cli("--dir", str(fresh), "init", "--url", url))
    assert_unavailable(code, err, url)
    assert not fresh.exists()
    ws, _ = init_workspace(str(tmp_path / "md"))
    config_before = load_config(ws.root).values
    code, _, err = finish(cli("--dir", ws.root, "--json", "init", "--url", url))
    assert_unavailable(code, err, url, as_json=True)
    assert load_config(ws.root).values == config_before
    assert not (Path(ws.root) / "config.json").exists()


def test_configured_redis_down_fails_every_command_and_writes_no_file(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0?workspace=team"
    root = tmp_path / "ws"
    init_workspace(str(root))
    (root / "config.json").write_text(json.dumps({"backend": "redis", "url": url}))
    before = files(root)
    commands = [
        ("task", "create", "x"),
        ("task", "claim", "--agent", "a"),
        ("agent", "register", "a"),
        ("event", "emit", "ch", "x"),
        ("context", "get", "p", "d"),
        ("status",),
        ("reap",),
    ]
    procs = [cli("--dir", str(root), *c) for c in commands]
    for code, _, err in (finish(p) for p in procs):
        assert_unavailable(code, err, url)
    assert files(root) == before


def test_a_short_outage_is_ridden_out_by_retries(durable: DurableRedis) -> None:
    from agentcoord.store.redis.store import RedisStore

    store = RedisStore(durable.url, workspace="short", retry_seconds=10)
    store.create_task(Task("1", "before the outage"))
    durable.crash()
    restarter = threading.Timer(0.5, durable.start)
    restarter.start()
    try:
        started = time.monotonic()
        store.create_task(Task("2", "during the outage"))  # waits, retries, succeeds
        assert time.monotonic() - started < 10
    finally:
        restarter.join()
    assert {t.id for t in store.list_tasks()} == {"1", "2"}
    # A budget that runs out reports the outage with the reason (exit 5).
    durable.crash()
    quick = RedisStore(durable.url, workspace="short", retry_seconds=0.2)
    with pytest.raises(BackendUnavailable) as info:
        quick.get_task("1")
    assert info.value.exit_code == 5
    assert PASSWORD not in str(info.value)
    quick.close()
    store.close()
