"""Small surprises of the CLI (issue 16 item 6), on every backend: ``--fields`` names are
checked, ``list`` and ``show`` agree on a field, ``-q`` still prints what a script cannot learn
otherwise, ``task log`` confirms, ``assign`` names the assignee, ``--depends-on`` takes both
forms, and every option has help text."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
from typing import Any

import pytest

from agentcoord.api import Coordinator
from agentcoord.cli.main import COMMANDS, main


@pytest.mark.parametrize(
    "argv",
    [
        ["task", "list"],
        ["task", "show", "t1"],
        ["agent", "list"],
        ["agent", "show", "a1"],
        ["context", "list"],
        ["stale"],
        ["monitor"],
    ],
)
def test_an_unknown_field_is_exit_2_listing_the_valid_ones(run_cli: Any, argv: list[str]) -> None:
    run_cli("agent", "register", "a1")
    run_cli("task", "create", "x", "--id", "t1")
    out = run_cli(*argv, "--fields", "bogus", code=2)
    assert "unknown field bogus" in out.stderr and "valid: " in out.stderr
    out = run_cli("--json", *argv, "--fields", "bogus", code=2)
    error = json.loads(out.stderr)["error"]
    assert (error["code"], error["unknown"]) == ("invalid_input", ["bogus"])
    assert error["valid"]


def test_list_and_show_agree_on_a_field(run_cli: Any) -> None:
    run_cli("task", "create", "x", "--id", "t1", "--max-attempts", "5")
    listed = json.loads(
        run_cli("--json", "task", "list", "--fields", "id,created_at,max_attempts").stdout
    )
    shown = json.loads(
        run_cli("--json", "task", "show", "t1", "--fields", "id,created_at,max_attempts").stdout
    )
    assert listed == [shown] and shown["created_at"] and shown["max_attempts"] == 5
    text = run_cli("task", "list", "--fields", "id,created_at").stdout
    assert shown["created_at"] in text


def test_show_fields_text_is_never_a_python_repr(run_cli: Any) -> None:
    run_cli("agent", "register", "a1")
    run_cli("task", "create", "x", "--id", "t1")
    run_cli("task", "claim", "t1", "--agent", "a1")
    out = run_cli("task", "show", "t1", "--fields", "logs,result,metrics,lease_expires").stdout
    assert "None" not in out and "{'" not in out and "[{" in out
    assert re.search(r"^result: -$", out, re.M)
    assert re.search(r"^lease_expires: \d{4}-\d\d-\d\dT", out, re.M)


def test_quiet_prints_what_a_script_needs(run_cli: Any) -> None:
    assert run_cli("-q", "agent", "register", "a1").stdout.strip()  # the session token
    assert run_cli("-q", "task", "create", "x").stdout == "1\n"
    assert run_cli("-q", "task", "create", "y", "--priority", "9").stdout == "2\n"
    assert run_cli("-q", "task", "claim", "--agent", "a1").stdout == "2\n"
    assert run_cli("-q", "task", "log", "2", "working", "--agent", "a1").stdout == ""
    assert run_cli("-q", "task", "complete", "2", "--agent", "a1").stdout == ""


def test_log_confirms_and_assign_names_the_assignee(run_cli: Any) -> None:
    run_cli("agent", "register", "a1")
    run_cli("agent", "register", "docker")
    run_cli("task", "create", "x", "--id", "t1")
    out = run_cli("task", "assign", "t1", "docker").stdout
    assert out == "assigned task t1 to docker (epoch 0): x\n"
    run_cli("task", "create", "y", "--id", "t2")
    run_cli("task", "claim", "t2", "--agent", "a1")
    assert run_cli("task", "log", "t2", "hello", "--agent", "a1").stdout == "task t2: logged\n"


def test_depends_on_takes_a_comma_list_and_repeats(run_cli: Any, coord: Coordinator) -> None:
    for name in ("a", "b", "c"):
        run_cli("task", "create", name, "--id", name)
    run_cli("task", "create", "d", "--id", "d", "--depends-on", "a,b", "--depends-on", "c")
    assert coord.tasks.get("d").depends_on == ["a", "b", "c"]
    run_cli("task", "create", "e", "--id", "e", "--depends-on", "a,nope", code=3)


def _help(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main([*argv, "--help"])
    return out.getvalue()


def _subcommands(text: str) -> list[str]:
    """The subcommands a ``--help`` lists: the reference generator's own reading of it."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "gen_cli_docs.py"
    spec = importlib.util.spec_from_file_location("gen_cli_docs", path)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    names: list[str] = gen.subcommands(text)
    return names


def test_every_option_of_every_command_has_help(monkeypatch: pytest.MonkeyPatch) -> None:
    missing: list[str] = []
    real = argparse.ArgumentParser.add_argument

    def recording(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        action = real(self, *args, **kwargs)
        if action.option_strings and action.help is None:
            missing.append(f"{self.prog} {'/'.join(action.option_strings)}")
        return action

    monkeypatch.setattr(argparse.ArgumentParser, "add_argument", recording)
    seen = 0
    for command in dict.fromkeys(COMMANDS):
        text = _help(command)
        seen += 1
        for sub in _subcommands(text):
            _help(command, sub)
            seen += 1
    assert seen > 40
    assert missing == []
