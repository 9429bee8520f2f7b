"""``coord task retry|reopen|cancel|edit|check|search`` and the lifecycle options of ``create``,
``list`` and ``show`` (SPEC section 11, issue 16): JSON shapes, exit codes, bad input; on every
backend through the ``run_cli`` fixture."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from agentcoord.api import Coordinator

from .conftest import FakeClock


def js(result: Any) -> Any:
    return json.loads(result.stdout)


def test_the_issue_scenario_from_the_command_line(run_cli: Any, coord: Coordinator) -> None:
    run_cli("agent", "register", "devops")
    run_cli("task", "create", "CI", "--id", "ci", "--label", "infra")
    for tid in ("deploy-staging", "load-tests"):
        run_cli("task", "create", tid, "--id", tid, "--depends-on", "ci")
    run_cli("task", "claim", "ci", "--agent", "devops")
    run_cli("task", "fail", "ci", "--agent", "devops", "--error", "runner quota")
    blocked = js(run_cli("--json", "task", "list", "--status", "blocked"))
    assert [t["id"] for t in blocked] == ["deploy-staging", "load-tests"]
    out = js(run_cli("--json", "task", "retry", "ci", "--reason", "quota raised"))
    assert (out["id"], out["status"], out["agent"]) == ("ci", "pending", None)
    assert "error" not in out
    assert run_cli("-q", "task", "retry", "ci", code=4).stdout == ""
    text = run_cli("task", "list").stdout
    assert "blocked" not in text
    run_cli("task", "claim", "ci", "--agent", "devops")
    run_cli("task", "complete", "ci", "--agent", "devops")
    ready = js(run_cli("--json", "task", "list", "--ready"))
    assert [t["id"] for t in ready] == ["deploy-staging", "load-tests"]
    shown = js(run_cli("--json", "task", "show", "ci"))
    assert any("was failed: runner quota" in ln["message"] for ln in shown["logs"])


def test_reopen_cancel_and_their_refusals(run_cli: Any) -> None:
    run_cli("agent", "register", "a")
    run_cli("task", "create", "t", "--id", "t")
    run_cli("task", "reopen", "t", code=4)
    out = js(run_cli("--json", "task", "cancel", "t", "--reason", "later"))
    assert (out["status"], out["error"]) == ("cancelled", "later")
    run_cli("task", "cancel", "t", code=4)
    assert "reopened task t (pending" in run_cli("task", "reopen", "t").stdout
    run_cli("task", "retry", "nope", code=3)
    run_cli("task", "reopen", "bad/id", code=2)
    err = run_cli("--json", "task", "retry", "t", code=4).stderr
    assert json.loads(err)["error"]["code"] == "invalid_transition"


def test_create_and_edit_with_lifecycle_options(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("task", "create", "Epic", "--id", "epic")
    monkeypatch.setattr("sys.stdin", io.StringIO("Make it.\n\n- [ ] fast\n- [ ] small\n"))
    out = js(
        run_cli(
            "--json",
            "task",
            "create",
            "Child",
            "--id",
            "c",
            "--label",
            "ui,p1",
            "--label",
            "web",
            "--requires",
            "gpu",
            "--parent",
            "epic",
            "--description",
            "-",
        )
    )
    assert (out["labels"], out["requires"], out["parent"]) == (["ui", "p1", "web"], ["gpu"], "epic")
    shown = js(run_cli("--json", "task", "show", "c"))
    assert shown["description"] == "Make it.\n\n- [ ] fast\n- [ ] small"
    assert shown["criteria"] == [
        {"n": 1, "done": False, "text": "fast"},
        {"n": 2, "done": False, "text": "small"},
    ]
    out = js(
        run_cli(
            "--json",
            "task",
            "edit",
            "c",
            "--title",
            "Child task",
            "--priority",
            "3",
            "--unlabel",
            "web",
            "--unrequire",
            "gpu",
            "--no-parent",
            "--lease",
            "90",
            "--max-attempts",
            "4",
        )
    )
    assert (out["title"], out["priority"], out["labels"]) == ("Child task", 3, ["ui", "p1"])
    assert "requires" not in out and "parent" not in out
    out = js(run_cli("--json", "task", "check", "c", "2"))
    assert out["criterion"] == {"n": 2, "done": True, "text": "small"}
    assert (out["criteria_done"], out["criteria_total"]) == (1, 2)
    assert "[ ] 2. small (0/2 done)" in run_cli("task", "check", "c", "2", "--uncheck").stdout
    run_cli("-q", "task", "check", "c", "1")
    assert js(run_cli("--json", "task", "show", "c"))["description"].count("- [x]") == 1


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["task", "edit", "t"], 2),  # nothing to change
        (["task", "edit", "t", "--title", "a\nb"], 2),
        (["task", "edit", "t", "--priority", "x"], 2),
        (["task", "edit", "t", "--lease", "0"], 2),
        (["task", "edit", "t", "--max-attempts", "0"], 2),
        (["task", "edit", "t", "--label", "a b"], 2),
        (["task", "edit", "t", "--add-dep", "t"], 2),  # a cycle
        (["task", "edit", "t", "--parent", "t"], 2),
        (["task", "edit", "t", "--parent", "u", "--no-parent"], 2),
        (["task", "edit", "t", "--add-dep", "missing"], 3),
        (["task", "edit", "t", "--parent", "missing"], 3),
        (["task", "edit", "missing", "--title", "x"], 3),
        (["task", "check", "t", "1"], 2),  # no criteria
        (["task", "check", "t", "0"], 2),
        (["task", "check", "t", "x"], 2),
        (["task", "search", ""], 2),
        (["task", "search", "x", "--status", "nope"], 2),
        (["task", "list", "--archived", "--ready"], 2),
        (["task", "list", "--label", "../x"], 2),
        (["task", "create", "x", "--requires", "a b"], 2),
        (["task", "create", "x", "--parent", "missing"], 3),
    ],
)
def test_bad_input(run_cli: Any, args: list[str], code: int) -> None:
    run_cli("task", "create", "t", "--id", "t")
    run_cli("task", "create", "u", "--id", "u")
    err = run_cli("--json", *args, code=code).stderr
    assert json.loads(err)["error"]["code"]


def test_parent_and_capability_conflicts_are_exit_4(run_cli: Any) -> None:
    run_cli("agent", "register", "reviewer", "--capability", "read")
    run_cli("task", "create", "Epic", "--id", "epic")
    run_cli("task", "claim", "epic", "--agent", "reviewer")  # before it had a child
    run_cli("task", "create", "Part", "--id", "part", "--parent", "epic", "--requires", "write")
    out = run_cli("--json", "task", "complete", "epic", "--agent", "reviewer", code=4)
    err = json.loads(out.stderr)["error"]
    assert err["children"] == ["part"] and "open children" in err["message"]
    out = run_cli("--json", "task", "claim", "part", "--agent", "reviewer", code=4)
    assert json.loads(out.stderr)["error"]["missing"] == ["write"]
    run_cli("task", "claim", "--agent", "reviewer", code=3)  # next-ready skips it
    children = js(run_cli("--json", "task", "list", "--parent", "epic"))
    assert [t["id"] for t in children] == ["part"]


def test_search_is_bounded(run_cli: Any) -> None:
    for i in range(25):
        run_cli("task", "create", f"Login step {i}", "--id", f"s{i}")
    run_cli("task", "create", "Other", "--id", "other", "--label", "login")
    result = run_cli("--json", "task", "search", "LOGIN")
    assert len(js(result)) == 20 and "showing 20 of 26 matches" in result.stderr
    rows = js(run_cli("--json", "task", "search", "login", "--label", "login", "--fields", "id"))
    assert rows == [{"id": "other"}]
    assert run_cli("task", "search", "nothing-like-it").stdout.strip() == "no tasks match"


def test_archived_tasks_are_listed_and_shown(
    run_cli: Any, coord: Coordinator, clock: FakeClock
) -> None:
    run_cli("agent", "register", "a")
    run_cli("task", "create", "Old", "--id", "old", "--label", "x")
    run_cli("task", "claim", "old", "--agent", "a")
    run_cli("task", "complete", "old", "--agent", "a")
    clock.advance(25 * 3600)
    run_cli("cleanup")
    shown = run_cli("--json", "task", "show", "old")
    assert js(shown)["archived"] is True and "is archived" in shown.stderr
    assert "# Task: Old" in run_cli("task", "show", "old").stdout
    rows = js(run_cli("--json", "task", "list", "--archived"))
    assert [(r["id"], r["archived"]) for r in rows] == [("old", True)]
    assert js(run_cli("--json", "task", "list")) == []
    assert js(run_cli("--json", "task", "search", "old", "--archived"))[0]["id"] == "old"
    run_cli("task", "show", "never", code=3)
