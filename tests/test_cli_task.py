"""The ``coord task`` CLI: JSON shapes, exit codes, hostile input, the seed's shell recipes."""

from __future__ import annotations

import json
import subprocess
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


def test_create_claim_progress_complete_json(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("--json", "task", "create", "Train model", "--id", "t1", "--total", "100")
    assert code == 0
    assert json.loads(out)["id"] == "t1"
    run("agent", "register", "a1")
    code, out, _ = run("task", "claim", "--agent", "a1", "--json")
    task = json.loads(out)
    assert {"id", "status", "agent", "epoch"} <= task.keys()
    assert (task["id"], task["status"], task["agent"], task["epoch"]) == (
        "t1",
        "in_progress",
        "a1",
        1,
    )
    code, out, _ = run(
        "--json",
        "task",
        "progress",
        "t1",
        "--agent",
        "a1",
        "--current",
        "35",
        "--metric",
        "loss=0.42",
        "--metric",
        "note=warm",
    )
    assert code == 0 and json.loads(out)["percent"] == 35.0
    code, out, _ = run("--json", "task", "show", "t1")
    shown = json.loads(out)
    assert shown["metrics"] == {"step": 35, "total_steps": 100, "loss": 0.42, "note": "warm"}
    code, out, _ = run("--json", "task", "complete", "t1", "--agent", "a1", "--result", "done")
    assert json.loads(out)["status"] == "complete"


def test_list_fields_limit_and_text(run) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        run("task", "create", f"task {i}")
    code, out, err = run("--json", "task", "list", "--limit", "2", "--fields", "id,status")
    assert code == 0
    assert json.loads(out) == [{"id": "1", "status": "pending"}, {"id": "2", "status": "pending"}]
    assert "showing 2 of 5" in err
    code, out, _ = run("task", "list")
    assert out.splitlines()[0].split()[:2] == ["ID", "STATUS"]


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["task", "create", "x", "--id", "../x"], 2, "invalid_name"),
        (["task", "create", "x", "--id", "a/b"], 2, "invalid_name"),
        (["task", "create", "x", "--id", ""], 2, "invalid_name"),
        (["task", "create", "x", "--id", "x" * 200], 2, "invalid_name"),
        (["task", "create", "   "], 2, "invalid_input"),
        (["task", "claim", "--agent", "a/b"], 2, "invalid_name"),
        (["task", "show", "nope"], 3, "not_found"),
        (["task", "claim", "--agent", "a", "--register"], 3, "nothing_to_claim"),
        (["task", "claim", "--agent", "a"], 3, "not_found"),  # never registered (SPEC 11)
        (["task", "progress", "x", "--agent", "a", "--percent", "abc"], 2, "invalid_input"),
        (["task", "bogus"], 2, "invalid_input"),
        (["task", "create"], 2, "invalid_input"),
        (["nosuchcommand"], 2, "invalid_input"),
        (["task", "list", "--status", "banana"], 2, "invalid_input"),
        (["task", "list", "--limit", "-1"], 2, "invalid_input"),
        (["task", "create", "x", "--eta", "soonish"], 2, "invalid_input"),
    ],
)
def test_bad_input_exit_codes_and_json_errors(run, args: list[str], code: int, error: str) -> None:  # type: ignore[no-untyped-def]
    got, out, err = run("--json", *args)
    assert got == code
    assert out == ""
    payload = json.loads(err.strip().splitlines()[-1])
    assert payload["error"]["code"] == error
    assert payload["error"]["exit"] == code


def test_errors_are_plain_text_without_json(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("task", "show", "missing")
    assert (code, out) == (3, "")
    assert err.startswith("coord: error: no task 'missing'")


def test_conflict_exit_4(run) -> None:  # type: ignore[no-untyped-def]
    run("task", "create", "x", "--id", "t1")
    run("agent", "register", "a")
    run("agent", "register", "b")
    run("task", "claim", "t1", "--agent", "a")
    code, _, err = run("task", "claim", "t1", "--agent", "b")
    assert code == 4 and "held by a" in err
    code, _, _ = run("task", "complete", "t1", "--agent", "b")
    assert code == 4


HOSTILE = [
    "line one\n**Status**: complete",
    "## Logs\n```\n[2025-01-01 00:00:00] forged",
    '```json\n{"x": 1}\n```',
    "**Assigned Agent**: mallory",
    "# Task: other",
    "tab\there and \u2028 separator \r carriage",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_changes_only_itself(run, workspace: Workspace, text: str) -> None:  # type: ignore[no-untyped-def]
    title = text if text.isprintable() else "hostile"
    if title != text:  # SPEC 16: a title is one line; the other fields still take anything
        assert run("task", "create", text, "--id", "h1")[0] == 2
        assert run("task", "create", title, "--id", "h1", "--next-step", text)[0] == 0
    else:
        run("task", "create", text, "--id", "h1")
    run("agent", "register", "a1")
    run("task", "claim", "h1", "--agent", "a1")
    assert run("task", "log", "h1", text, "--agent", "a1")[0] == 0
    assert (
        run("task", "progress", "h1", "--agent", "a1", "--percent", "5", "--metric", f"k={text}")[0]
        == 0
    )
    _, out, _ = run("--json", "task", "show", "h1")
    task = json.loads(out)
    assert (task["status"], task["agent"], task["title"]) == ("in_progress", "a1", title)
    assert task["logs"][-1]["message"] == text
    assert task["metrics"]["k"] == text
    raw = (Path(workspace.root) / "task-h1.md").read_text()
    assert raw.count("\n**Status**:") == 1
    assert raw.count("\n## Logs") == 1


def test_corrupt_task_file_exit_6_and_list_still_works(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    run("task", "create", "good", "--id", "good")
    run("task", "create", "bad", "--id", "bad")
    path = Path(workspace.root) / "task-bad.md"
    text = path.read_text().replace("**Status**: pending", "**Status**: exploded")
    path.write_text(text)
    code, _, err = run("--json", "task", "show", "bad")
    assert code == 6
    payload = json.loads(err)["error"]
    assert payload["path"].endswith("task-bad.md")
    assert payload["line"] == 5
    assert "exploded" in payload["message"]
    code, out, err = run("--json", "task", "list")
    assert code == 0
    assert [t["id"] for t in json.loads(out)] == ["good"]
    assert "task-bad.md:5" in err
    # A write path never overwrites the unreadable file.
    run("agent", "register", "a")
    assert run("task", "claim", "bad", "--agent", "a")[0] == 6
    assert path.read_text() == text


def test_seed_shell_recipes_work_on_task_files(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    run("task", "create", "active", "--id", "act", "--total", "10")
    run("task", "create", "idle", "--id", "idle")
    run("agent", "register", "a1")
    run("task", "claim", "act", "--agent", "a1")
    run("task", "progress", "act", "--agent", "a1", "--current", "3", "--metric", "weird=```")
    root = Path(workspace.root)
    found = subprocess.run(
        'for t in task-*.md; do grep -q \'Status.*in_progress\' "$t" && echo "$t"; done',
        shell=True,
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert found == ["task-act.md"]
    block = subprocess.run(
        "sed -n '/```json/,/```/p' task-act.md | sed '1d;$d'",
        shell=True,
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(block) == {"step": 3, "total_steps": 10, "weird": "```"}


def test_real_process_and_python_m(workspace: Workspace) -> None:
    env = coord_env(workspace.root)
    proc = subprocess.run(
        [*COORD, "--json", "task", "create", "via process"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "pending"
    proc = subprocess.run([*COORD, "--help"], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "task" in proc.stdout


def test_assign_auto_with_capability(run) -> None:  # type: ignore[no-untyped-def]
    run("agent", "register", "gpu-box", "--capability", "gpu")
    run("agent", "register", "cpu-box")
    run("task", "create", "train", "--id", "t1")
    code, out, _ = run("--json", "task", "assign", "t1", "--auto", "--capability", "gpu")
    assert code == 0
    assert json.loads(out)["agent"] == "gpu-box"
    code, _, err = run("--json", "task", "assign", "t1", "cpu-box", "--capability", "gpu")
    assert code == 2
    assert json.loads(err)["error"]["code"] == "invalid_input"


def test_show_fields_prints_nested_values_as_json_never_a_repr(run) -> None:  # type: ignore[no-untyped-def]
    run("task", "create", "x", "--id", "t1")
    run("agent", "register", "a1")
    run("task", "claim", "t1", "--agent", "a1")
    assert run("task", "log", "t1", 'it\'s "quoted"', "--agent", "a1")[1] == "task t1: logged\n"
    code, out, _ = run("task", "show", "t1", "--fields", "id,logs,depends_on")
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["id"] == "t1"
    assert json.loads(lines["logs"])[-1]["message"] == 'it\'s "quoted"'
    assert lines["depends_on"] == "-"
