"""The ``coord event`` and ``coord watch`` CLI: JSON shapes, exit codes, ``--follow`` across
processes, corrupt files reported and never truncated."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from agentcoord.cli.main import main
from agentcoord.workspace import Workspace

from .conftest import COORD, coord_env


@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``coord`` in-process against the test workspace; returns (code, stdout, stderr)."""
    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def _ndjson(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_emit_and_tail_json_shapes(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("--json", "event", "emit", "training", "checkpoint_saved", "Step=3500",
                       "Loss=0.42", "Checkpoint Path=a=b.pt", "--agent", "ai-eng")  # fmt: skip
    assert code == 0
    event = json.loads(out)
    assert event["seq"] == 1 and event["type"] == "checkpoint_saved"
    assert event["channel"] == "training"
    assert event["time"].endswith("Z")
    assert event["fields"] == {
        "Agent": "ai-eng",
        "Step": "3500",
        "Loss": "0.42",
        "Checkpoint Path": "a=b.pt",
    }
    run("event", "emit", "training", "step", "Loss=0.41")
    code, out, _ = run("--json", "event", "tail", "training")
    rows = _ndjson(out)
    assert [r["seq"] for r in rows] == [1, 2]
    assert all({"seq", "type", "time"} <= r.keys() for r in rows)
    code, out, _ = run("event", "tail", "training", "-n", "1")
    assert out.startswith("[2] ") and out.rstrip().endswith("step Loss=0.41")
    code, out, _ = run("--json", "event", "tail", "training", "--since", "1")
    assert [r["seq"] for r in _ndjson(out)] == [2]
    code, out, _ = run("--json", "event", "channels")
    assert json.loads(out) == [{"channel": "training", "last_seq": 2}]


def test_consumer_cursor_is_saved_between_runs(run) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        run("event", "emit", "ch", "e", f"i={i}")
    code, out, err = run("--json", "event", "tail", "ch", "--consumer", "c", "-n", "3")
    assert code == 0 and [r["seq"] for r in _ndjson(out)] == [1, 2, 3]
    assert "more events pending" in err
    code, out, _ = run("--json", "event", "tail", "ch", "--consumer", "c")
    assert [r["seq"] for r in _ndjson(out)] == [4, 5]
    code, out, _ = run("--json", "event", "tail", "ch", "--consumer", "c")
    assert (code, out) == (0, "")
    # --no-ack leaves the cursor; an explicit ack moves it.
    run("event", "emit", "ch", "e")
    _, out, _ = run("--json", "event", "tail", "ch", "--consumer", "c", "--no-ack")
    assert [r["seq"] for r in _ndjson(out)] == [6]
    _, out, _ = run("--json", "event", "tail", "ch", "--consumer", "c", "--no-ack")
    assert [r["seq"] for r in _ndjson(out)] == [6]
    code, out, _ = run("--json", "event", "ack", "ch", "c", "6")
    assert json.loads(out) == {"channel": "ch", "consumer": "c", "cursor": 6}
    _, out, _ = run("--json", "event", "tail", "ch", "--consumer", "c")
    assert out == ""


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["event", "emit", "a/b", "x"], 2, "invalid_name"),
        (["event", "emit", "ch", "bad type"], 2, "invalid_name"),
        (["event", "emit", "ch", "x", "novalue"], 2, "invalid_input"),
        (["event", "emit", "ch", "x", "=v"], 2, "invalid_input"),
        (["event", "emit", "ch", "x", "k=" + "v" * 5000], 2, "invalid_input"),
        (["event", "emit", "ch", "x", "--agent", "a/b"], 2, "invalid_name"),
        (["event", "tail", "../etc"], 2, "invalid_name"),
        (["event", "tail", "ch", "-n", "-1"], 2, "invalid_input"),
        (["event", "tail", "ch", "-n", "many"], 2, "invalid_input"),
        (["event", "tail", "ch", "--since", "1", "--consumer", "c"], 2, "invalid_input"),
        (["event", "tail", "ch", "--consumer", "a/b"], 2, "invalid_name"),
        (["event", "tail", "ch", "--no-ack"], 2, "invalid_input"),
        (["event", "tail", "ch", "--timeout", "1"], 2, "invalid_input"),
        (["event", "ack", "ch", "c", "5"], 2, "invalid_input"),
        (["event"], 2, "invalid_input"),
        (["watch", "--kinds", "task,bogus"], 2, "invalid_input"),
        (["watch", "--timeout", "soon"], 2, "invalid_input"),
    ],
)
def test_bad_input_exit_codes(run, args: list[str], code: int, error: str) -> None:  # type: ignore[no-untyped-def]
    got, out, err = run("--json", *args)
    assert got == code
    assert out == ""
    assert json.loads(err.strip().splitlines()[-1])["error"]["code"] == error


CORRUPT = "# Ch Events Log\n\n**Last Seq**: 2\n\n---\n\n## Event: x\n**Seq**: two\n**Time**: now\n"


def test_corrupt_event_file_reported_and_never_truncated(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    path = Path(workspace.root) / "events-ch.md"
    path.write_text(CORRUPT)
    code, out, err = run("--json", "event", "tail", "ch")
    assert (code, out) == (6, "")
    payload = json.loads(err)["error"]
    assert payload["code"] == "corrupt"
    assert payload["path"].endswith("events-ch.md") and payload["line"] == 8
    code, _, err = run("event", "emit", "ch", "x", "k=v")
    assert code == 6 and "events-ch.md:8" in err
    assert path.read_text() == CORRUPT
    code, _, _ = run("event", "tail", "ch", "--consumer", "c")
    assert code == 6
    assert path.read_text() == CORRUPT


def _readline(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output from the follower"
    return proc.stdout.readline()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)  # also closes the pipes


@pytest.mark.parametrize("mode", ["native", "poll"])
def test_follow_in_another_process_gets_later_events(workspace: Workspace, mode: str) -> None:
    env = coord_env(workspace.root)
    if mode == "poll":
        env["COORD_WATCH"] = "poll"
    first = subprocess.run([*COORD, "event", "emit", "ch", "before"], env=env, check=True)
    assert first.returncode == 0
    follower = subprocess.Popen(
        [*COORD, "--json", "event", "tail", "ch", "--since", "0", "--follow", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        assert json.loads(_readline(follower))["type"] == "before"  # it runs: now emit
        subprocess.run([*COORD, "event", "emit", "ch", "after", "k=v"], env=env, check=True)
        row = json.loads(_readline(follower))
        assert (row["seq"], row["type"], row["fields"]) == (2, "after", {"k": "v"})
    finally:
        _stop(follower)


def test_follow_with_consumer_acks_what_it_printed(workspace: Workspace) -> None:
    env = coord_env(workspace.root)
    for i in range(3):
        subprocess.run([*COORD, "event", "emit", "ch", "e", f"i={i}"], env=env, check=True)
    follower = subprocess.Popen(
        [*COORD, "--json", "event", "tail", "ch", "--consumer", "c", "--follow", "--timeout", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert [json.loads(_readline(follower))["seq"] for _ in range(3)] == [1, 2, 3]
        subprocess.run([*COORD, "event", "emit", "ch", "e"], env=env, check=True)
        assert json.loads(_readline(follower))["seq"] == 4
        assert follower.wait(timeout=60) == 0  # --timeout: a clean end, after the acks
    finally:
        _stop(follower)
    out = subprocess.run(
        [*COORD, "--json", "event", "tail", "ch", "--consumer", "c"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == ""


def test_follow_timeout_and_ctrl_c_exit_0(workspace: Workspace) -> None:
    env = coord_env(workspace.root)
    done = subprocess.run(
        [*COORD, "event", "tail", "ch", "--follow", "--timeout", "0.2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")
    proc = subprocess.Popen(
        [*COORD, "--json", "event", "tail", "ch", "--since", "0", "--follow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        subprocess.run([*COORD, "event", "emit", "ch", "x"], env=env, check=True)
        _readline(proc)
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        assert proc.wait(timeout=30) == 0
    finally:
        _stop(proc)


def test_watch_feed_ndjson(workspace: Workspace) -> None:
    env = coord_env(workspace.root)
    watcher = subprocess.Popen(
        [*COORD, "--json", "watch", "--kinds", "event,context", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Emit until the watcher reports (it may still be starting when the first one lands).
        seen: dict[str, object] = {}
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            subprocess.run([*COORD, "event", "emit", "ch", "x"], env=env, check=True)
            assert watcher.stdout is not None
            ready, _, _ = select.select([watcher.stdout], [], [], 1.0)
            if ready:
                seen = json.loads(watcher.stdout.readline())
        assert {"kind", "key", "action", "time"} <= seen.keys()
        assert (seen["kind"], seen["key"]) == ("event", "ch")
        assert seen["action"] in ("created", "changed")
        subprocess.run([*COORD, "task", "create", "ignored", "--id", "t1"], env=env, check=True)
        subprocess.run(
            [*COORD, "context", "put", "p", "d"], input="{}", text=True, env=env, check=True
        )
        rows = []
        while True:
            row = json.loads(_readline(watcher))
            rows.append(row)
            if row["kind"] == "context":
                break
        assert all(r["kind"] in ("event", "context") for r in rows)
        assert rows[-1]["key"] == "p-d"
    finally:
        _stop(watcher)


def test_json_stdout_is_only_json_when_piped(workspace: Workspace) -> None:
    env = coord_env(workspace.root)
    proc = subprocess.run(
        [*COORD, "--json", "event", "emit", "ch", "x", "a=1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout)["seq"] == 1 and proc.stderr == ""
    assert os.path.exists(os.path.join(workspace.root, "events-ch.md"))
