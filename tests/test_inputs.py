"""Hostile input at every entry point: ``config.json`` settings, time inputs, text that cannot be
encoded, and whole numbers beyond what Redis and Lua hold exactly.

Each kind is checked across every command (or API call) that accepts it, not only the example
that first showed the fault: each must fail cleanly (exit 2 naming the option, or exit 6 naming
config.json and the key), never with a traceback or a file that cannot be read back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from agentcoord import errors
from agentcoord.api import Coordinator
from agentcoord.cli.main import main
from agentcoord.core import validate
from agentcoord.core.clock import iso, parse_iso
from agentcoord.core.config import DEFAULTS, ConfigProblem, check
from agentcoord.core.validate import MAX_DURATION, MAX_INT, MAX_TIME
from agentcoord.workspace import Workspace, load_config, record_backend

from .conftest import FakeClock

BAD = "\udcff"  # what Python makes of the byte 0xff in a command-line argument (surrogateescape)
TOO_BIG = str(2**53)  # one past the largest whole number Redis stream ids and Lua hold exactly


@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``coord --json ARGS`` in-process on the markdown test workspace: (code, stdout, error)
    where error is the decoded ``{"error": ...}`` object (None on success)."""
    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)
    monkeypatch.setenv("COORD_FSYNC", "0")

    def _run(*args: str) -> tuple[int, str, dict[str, Any] | None]:
        capsys.readouterr()
        code = main(["--json", *args])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        lines = [ln for ln in err.splitlines() if ln.startswith('{"error"')]
        return code, out, json.loads(lines[-1])["error"] if lines else None

    return _run


def _write_config(workspace: Workspace, text: str) -> Path:
    path = Path(workspace.root) / "config.json"
    path.write_text(text)
    return path


# -- 1. config.json ---------------------------------------------------------------------------
BAD_CONFIGS = [
    ({"backend": "files"}, "backend"),
    ({"backend": 1}, "backend"),
    ({"lease_secnds": 60}, "lease_secnds"),
    ({"nonsense": True}, "nonsense"),
    ({"backend": "redis"}, "backend"),
    ({"backend": "redis", "url": None}, "backend"),
    ({"url": "redis://localhost:6379/0"}, "url"),
    ({"backend": "markdown", "url": "redis://localhost:6379/0"}, "url"),
    ({"backend": "redis", "url": "http://localhost/"}, "url"),
    ({"backend": "redis", "url": ""}, "url"),
    ({"lease_seconds": "600"}, "lease_seconds"),
    ({"lease_seconds": 0}, "lease_seconds"),
    ({"lease_seconds": -5}, "lease_seconds"),
    ({"lease_seconds": True}, "lease_seconds"),
    ({"lease_seconds": 1e300}, "lease_seconds"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_attempts": 2.5}, "max_attempts"),
    ({"max_attempts": "3"}, "max_attempts"),
    ({"max_attempts": 2**53}, "max_attempts"),
    ({"keep_events": 0}, "keep_events"),
    ({"keep_events": False}, "keep_events"),
    ({"durable": "yes"}, "durable"),
    ({"durable": 1}, "durable"),
    ({"lock_timeout": 0}, "lock_timeout"),
    ({"lock_timeout": -1}, "lock_timeout"),
    ({"lock_timeout": "10"}, "lock_timeout"),
    ({"retry_seconds": -1}, "retry_seconds"),
    ({"retry_seconds": None}, "retry_seconds"),
    ({"breaker_threshold": 0}, "breaker_threshold"),
    ({"breaker_cooldown": -1}, "breaker_cooldown"),
    ({"breaker_cooldown": [300]}, "breaker_cooldown"),
    ({"context_max_bytes": 0}, "context_max_bytes"),
    ({"context_max_bytes": 1.5}, "context_max_bytes"),
    ({"clock_skew": -1}, "clock_skew"),
    ({"clock_skew": "60"}, "clock_skew"),
    ({"clock_skew": True}, "clock_skew"),
    ({"monitor": 60}, "monitor"),
    ({"monitor": {"nromal": 10}}, "monitor.nromal"),
    ({"monitor": {"normal": "soon"}}, "monitor.normal"),
    ({"monitor": {"stuck": -1}}, "monitor.stuck"),
    ({"monitor": {"concerning": True}}, "monitor.concerning"),
    ({"monitor": {"git": "no"}}, "monitor.git"),
    ({"monitor": {"normal": 100, "acceptable": 50}}, "monitor"),
]
#: NaN and the infinities: Python's json module reads them, so the file can hold them.
NON_FINITE = [
    ('{"lease_seconds": NaN}', "lease_seconds"),
    ('{"lock_timeout": Infinity}', "lock_timeout"),
    ('{"clock_skew": -Infinity}', "clock_skew"),
    ('{"retry_seconds": 1e999}', "retry_seconds"),
    ('{"monitor": {"stuck": NaN}}', "monitor.stuck"),
]


def _bad_config_cases() -> list[tuple[str, str]]:
    return [(json.dumps(c), key) for c, key in BAD_CONFIGS] + NON_FINITE


@pytest.mark.parametrize(("text", "key"), _bad_config_cases())
def test_a_bad_setting_is_exit_6_naming_the_file_and_key(
    run: Any, workspace: Workspace, text: str, key: str
) -> None:
    path = _write_config(workspace, text)
    code, out, error = run("task", "list")
    assert (code, out) == (6, "")
    assert error is not None and error["code"] == "corrupt"
    assert error["path"] == str(path)
    assert f"'{key}'" in error["reason"]
    assert error["message"].startswith(f"{path}:1: config key '{key}'")
    assert path.read_text() == text  # reported, never rewritten


@pytest.mark.parametrize(("values", "key"), BAD_CONFIGS)
def test_check_names_the_key(values: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigProblem) as caught:
        check(values)
    assert caught.value.key == key


def test_the_reported_line_is_the_keys(workspace: Workspace) -> None:
    text = '{\n  "lease_seconds": 60,\n  "monitor": {\n    "normal": 30,\n    "stuk": 9\n  }\n}\n'
    _write_config(workspace, text)
    with pytest.raises(errors.CorruptData) as caught:
        load_config(workspace.root)
    assert caught.value.line == 5
    assert "monitor.stuk" in caught.value.reason
    assert "did you mean 'stuck'" in caught.value.reason


def test_a_typo_is_answered_with_the_setting_meant(workspace: Workspace) -> None:
    _write_config(workspace, '{"lease_secnds": 60}')
    with pytest.raises(errors.CorruptData, match="did you mean 'lease_seconds'"):
        load_config(workspace.root)


def test_a_bad_url_is_reported_without_its_password(workspace: Workspace) -> None:
    _write_config(workspace, json.dumps({"backend": "redis", "url": "http://u:hunter2@host/"}))
    with pytest.raises(errors.CorruptData) as caught:
        load_config(workspace.root)
    assert "hunter2" not in caught.value.message
    assert "http://" in caught.value.message


def test_a_number_json_cannot_hold_as_text_is_corrupt_not_a_traceback(
    workspace: Workspace,
) -> None:
    _write_config(workspace, '{"keep_events": 1' + "0" * 5000 + "}")
    with pytest.raises(errors.CorruptData):
        load_config(workspace.root)


def test_good_settings_still_load(workspace: Workspace) -> None:
    values = {
        **{k: v for k, v in DEFAULTS.items() if k != "monitor"},
        "lock_timeout": 0.3,
        "retry_seconds": 0,
        "clock_skew": 0,
        "breaker_cooldown": 0,
        "monitor": {"normal": 10, "acceptable": 20, "concerning": 25, "stuck": 40, "git": False},
    }
    _write_config(workspace, json.dumps(values))
    config = load_config(workspace.root)
    assert config["lock_timeout"] == 0.3
    assert config["monitor"]["git"] is False
    assert config["monitor"]["stuck"] == 40
    _write_config(workspace, json.dumps({"backend": "redis", "url": "unix:///tmp/r.sock"}))
    assert load_config(workspace.root)["url"] == "unix:///tmp/r.sock"
    _write_config(workspace, "{}")
    assert load_config(workspace.root)["lease_seconds"] == DEFAULTS["lease_seconds"]


#: Every command that reads the workspace (``timer stop`` is left out on purpose: stopping a
#: timer must work whatever the settings say).
EVERY_COMMAND = [
    ["init"],
    ["status"],
    ["task", "list"],
    ["task", "create", "x"],
    ["reap"],
    ["agent", "list"],
    ["agent", "register", "a1"],
    ["monitor"],
    ["metrics", "--no-write"],
    ["event", "emit", "ch", "t"],
    ["event", "tail", "ch"],
    ["event", "channels"],
    ["context", "list"],
    ["watch", "--timeout", "0"],
    ["stale"],
    ["cleanup", "--dry-run"],
    ["doctor"],
    ["timer", "status"],
    ["timer", "check"],
    ["migrate", "--to", "elsewhere", "--dry-run"],
    ["dashboard", "--once"],
]


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=" ".join)
def test_every_command_refuses_a_bad_config(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    path = _write_config(workspace, '{"lease_secnds": 60}')
    code = main(["--json", "--dir", workspace.root, *argv])
    err = capsys.readouterr().err
    assert code == 6, err
    assert json.loads(err.splitlines()[-1])["error"]["path"] == str(path)


def test_a_url_on_the_command_line_does_not_hide_a_bad_config(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workspace is found first and its config read: it used to be dropped silently when
    ``--url`` was given (and the defaults used)."""
    _write_config(workspace, '{"lease_secnds": 60}')
    code = main(["--dir", workspace.root, "--url", "redis://127.0.0.1:1/0", "task", "list"])
    assert code == 6, capsys.readouterr().err


def test_recording_a_backend_keeps_and_checks_the_other_settings(workspace: Workspace) -> None:
    path = _write_config(workspace, json.dumps({"backend": "redis", "lease_seconds": 30}))
    # A missing url is what recording one repairs ...
    record_backend(workspace.root, "redis", "redis://localhost:6379/0")
    assert json.loads(path.read_text()) == {
        "backend": "redis",
        "lease_seconds": 30,
        "url": "redis://localhost:6379/0",
    }
    # ... but another bad setting is reported and the file is left as it is.
    text = json.dumps({"lease_secnds": 30})
    _write_config(workspace, text)
    with pytest.raises(errors.CorruptData, match="lease_secnds"):
        record_backend(workspace.root, "markdown")
    assert path.read_text() == text


# -- 2. times and durations ---------------------------------------------------------------------
HUGE = ["1e300", "1e400", "4000000000", "200y"]


def _too_long(flag: str, value: str) -> tuple[list[str], str]:
    return [flag, value], flag


DURATION_OPTIONS = [
    (["task", "create", "x"], "--lease"),
    (["task", "claim", "--agent", "a1"], "--lease"),
    (["task", "create", "x"], "--eta"),
    (["task", "progress", "t1", "--agent", "a1", "--percent", "5"], "--eta"),
    (["event", "tail", "ch", "--follow"], "--timeout"),
    (["watch"], "--timeout"),
    (["stale"], "--max-age"),
    (["metrics", "--no-write"], "--window"),
    (["monitor", "--watch"], "--interval"),
    (["timer", "start"], "--interval"),
    (["timer", "start", "--adaptive"], "--max-interval"),
    (["timer", "start"], "--on-checkpoint-timeout"),
    (["timer", "stop"], "--timeout"),
    (["demo"], "--timeout"),
]


@pytest.mark.parametrize("value", ["1e300", "1e12", "4000000000s", "40000d"])
@pytest.mark.parametrize(("argv", "flag"), DURATION_OPTIONS, ids=str)
def test_durations_beyond_100_years_are_exit_2_naming_the_option(
    run: Any, argv: list[str], flag: str, value: str
) -> None:
    code, out, error = run(*argv, f"{flag}={value}")
    assert (code, out) == (2, ""), error
    assert error is not None and error["code"] == "invalid_input"
    assert error["message"].startswith(f"{flag} must be")
    assert "100 years" in error["message"]


@pytest.mark.parametrize(("argv", "flag"), DURATION_OPTIONS, ids=str)
@pytest.mark.parametrize("value", ["1e400", "-1e400", "nan", "inf", "-5"])
def test_durations_that_are_not_finite_or_negative_are_exit_2(
    run: Any, argv: list[str], flag: str, value: str
) -> None:
    code, _, error = run(*argv, f"{flag}={value}")
    assert code == 2, error
    assert error is not None and flag in error["message"]


def test_stale_hours_are_bounded(run: Any) -> None:
    for value in ("1e300", "876001", "inf", "nan", "-1"):
        code, _, error = run("cleanup", "--dry-run", "--stale-hours", value)
        assert code == 2
        assert error is not None and "--stale-hours" in error["message"]
    assert run("cleanup", "--dry-run", "--stale-hours", "876000")[0] == 0


@pytest.mark.parametrize(
    "value", ["1969-12-31T23:59:59Z", "9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00Z"]
)
def test_an_eta_outside_the_years_a_record_holds_is_exit_2(run: Any, value: str) -> None:
    code, _, error = run("task", "create", "x", "--eta", value)
    assert code == 2
    assert error is not None and "--eta" in error["message"]


def test_the_longest_accepted_times_render_and_parse_back(run: Any, workspace: Workspace) -> None:
    assert run("task", "create", "x", "--id", "t1", "--eta", "9999-12-31T23:59:59Z")[0] == 0
    assert run("task", "create", "y", "--id", "t2", "--lease", "100y".replace("y", "d"))[0] == 0
    assert run("task", "claim", "t2", "--agent", "a1", "--lease", "36500d", "--register")[0] == 0
    code, out, _ = run("task", "show", "t2")
    assert code == 0
    assert json.loads(out)["lease_expires"]
    code, out, _ = run("task", "show", "t1")
    assert json.loads(out)["eta"].startswith("9999-12-31T23:59:59")


def test_parse_iso_refuses_times_outside_years_1_to_9999() -> None:
    assert iso(parse_iso("9999-12-31T23:59:59Z")) == "9999-12-31T23:59:59Z"
    assert iso(parse_iso("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00Z"
    for text in ("9999-12-31T23:59:59-00:01", "0001-01-01T00:00:00+00:01"):
        with pytest.raises(ValueError, match="0001-9999"):
            parse_iso(text)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 1e300, MAX_DURATION * 2, -1.0])
def test_the_api_bounds_leases(coord: Coordinator, bad: float) -> None:
    with pytest.raises(errors.InvalidInput, match="lease"):
        coord.tasks.create("x", lease_seconds=bad)
    coord.tasks.create("y", id="t1")
    with pytest.raises(errors.InvalidInput, match="lease"):
        coord.tasks.claim("t1", agent="a1", lease_seconds=bad, register=True)
    assert coord.tasks.get("t1").status == "pending"


@pytest.mark.parametrize("bad", [math.inf, math.nan, 1e300, MAX_TIME + 1, -1.0, 10**400])
def test_the_api_bounds_etas(coord: Coordinator, bad: float) -> None:
    with pytest.raises(errors.InvalidInput, match="eta"):
        coord.tasks.create("x", eta=bad)
    coord.tasks.create("y", id="t1")
    coord.tasks.claim("t1", agent="a1", register=True)
    with pytest.raises(errors.InvalidInput, match="eta"):
        coord.tasks.progress("t1", agent="a1", percent=5, eta=bad)
    assert coord.tasks.get("t1").eta is None


@pytest.mark.parametrize("bad", [math.inf, math.nan, 1e300, -1.0])
def test_the_api_bounds_follow_timeouts(coord: Coordinator, bad: float) -> None:
    with pytest.raises(errors.InvalidInput, match="timeout"):
        coord.events.follow("ch", timeout=bad)


def test_a_tiny_percentage_gives_no_eta_rather_than_one_past_year_9999(
    coord: Coordinator, clock: FakeClock
) -> None:
    coord.tasks.create("x", id="t1", total=1e300)
    coord.tasks.claim("t1", agent="a1", register=True)
    clock.advance(60)
    task = coord.tasks.progress("t1", agent="a1", percent=1e-300)
    assert task.eta is None
    task = coord.tasks.progress("t1", agent="a1", current=1.0)
    assert task.eta is None
    assert coord.tasks.get("t1").progress_current == 1.0  # stored and read back
    task = coord.tasks.progress("t1", agent="a1", percent=50)
    assert task.eta == pytest.approx(clock.now + 60)


# -- 3. text that cannot be encoded -------------------------------------------------------------
TEXT_ENTRY_POINTS = [
    (["task", "create", f"title {BAD}"], "title"),
    (["task", "create", "x", "--ref", f"spec={BAD}"], "reference"),
    (["task", "create", "x", "--ref", f"{BAD}=spec"], "reference label"),
    (["task", "create", "x", "--next-step", BAD], "next step"),
    (["task", "list", "--fields", f"id,{BAD}"], "--fields"),
    (["task", "log", "t1", BAD, "--agent", "a1"], "message"),
    (["task", "progress", "t1", "--agent", "a1", "-m", BAD], "message"),
    (["task", "progress", "t1", "--agent", "a1", "--metric", f"k={BAD}"], "metrics"),
    (["task", "progress", "t1", "--agent", "a1", "--metric", f"{BAD}=1"], "metrics"),
    (["task", "complete", "t1", "--agent", "a1", "--result", BAD], "result"),
    (["task", "fail", "t1", "--agent", "a1", "--error", BAD], "error"),
    (["task", "release", "t1", "--agent", "a1", "--reason", BAD], "reason"),
    (["task", "cancel", "t1", "--reason", BAD], "reason"),
    (["event", "emit", "ch", "t", f"k={BAD}"], "event field 'k'"),
    (["event", "emit", "ch", "t", f"{BAD}=v"], "event field name"),
    (["agent", "register", "a1", "--note", BAD], "note"),
    (["agent", "heartbeat", "a1", "--note", BAD], "note"),
    (["context", "put", "p", "d", "--title", BAD, "--file", "{file}"], "--title"),
    (["context", "put", "p", "d", "--text", BAD, "--file", "{file}"], "--text"),
    (["context", "put", "p", "d", "--by", BAD, "--file", "{file}"], "--by"),
    (["context", "put", "p", "d", "--file", "{escaped}"], "context data"),
]


@pytest.mark.parametrize(("argv", "field"), TEXT_ENTRY_POINTS, ids=str)
def test_text_that_cannot_be_encoded_is_exit_2_naming_the_field(
    run: Any, workspace: Workspace, tmp_path: Path, argv: list[str], field: str
) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"k": 1}')
    escaped = tmp_path / "escaped.json"
    escaped.write_text('{"k": "\\udcff"}')  # valid JSON text whose string is a lone surrogate
    assert run("task", "create", "held", "--id", "t1")[0] == 0
    assert run("task", "claim", "t1", "--agent", "a1", "--register")[0] == 0
    assert run("agent", "register", "a1")[0] == 0
    before = _records(workspace)
    args = [a.replace("{file}", str(good)).replace("{escaped}", str(escaped)) for a in argv]
    code, out, error = run(*args)
    assert (code, out) == (2, ""), error
    assert error is not None and error["code"] == "invalid_input"
    assert field in error["message"]
    assert "\\udcff" in error["message"] or "\udcff" in error["message"]
    assert _records(workspace) == before  # nothing written, so nothing with a "?" or U+FFFD


def _records(workspace: Workspace) -> dict[str, str]:
    return {p.name: p.read_text() for p in Path(workspace.root).glob("*.md")}


def test_the_api_refuses_unencodable_text(coord: Coordinator) -> None:
    """The domain checks it, so the Python API and MCP (which goes through the domain) get the
    same exit-2 error on every backend."""
    tasks = coord.tasks
    calls = [
        (lambda: tasks.create(BAD), "title"),
        (lambda: tasks.create("x", next_steps=[BAD]), "next step"),
        (lambda: tasks.create("x", context_refs=[("a", BAD)]), "reference"),
        (lambda: tasks.create("x", metrics={"k": BAD}), "metrics"),
        (lambda: tasks.create("x", metrics={BAD: 1}), "metrics"),
        (lambda: coord.events.emit("ch", "t", {"k": BAD}), "event field 'k'"),
        (lambda: coord.events.emit("ch", "t", [(BAD, "v")]), "event field name"),
        (lambda: coord.agents.register("a1", note=BAD), "note"),
        (lambda: coord.contexts.put("p", "d", {"k": [BAD]}), "context data"),
        (lambda: coord.contexts.put("p", "d", '{"k": "\\udcff"}'), "context data"),
    ]
    for call, field in calls:
        with pytest.raises(errors.InvalidInput) as caught:
            call()
        assert field in caught.value.message
    tasks.create("x", id="t1")
    tasks.claim("t1", agent="a1", register=True)
    for call, field in [
        (lambda: tasks.log("t1", BAD, agent="a1"), "message"),
        (lambda: tasks.progress("t1", agent="a1", message=BAD), "message"),
        (lambda: tasks.complete("t1", agent="a1", result=BAD), "result"),
        (lambda: tasks.fail("t1", agent="a1", error=BAD), "error"),
        (lambda: tasks.release("t1", agent="a1", reason=BAD), "reason"),
        (lambda: tasks.cancel("t1", reason=BAD), "reason"),
    ]:
        with pytest.raises(errors.InvalidInput) as caught:
            call()
        assert field in caught.value.message
    assert [t.id for t in tasks.list()] == ["t1"]
    assert tasks.get("t1").status == "in_progress"
    assert coord.events.channels() == []


def test_encodable() -> None:
    assert validate.encodable("naïve ✓ 日本", "title") == "naïve ✓ 日本"
    with pytest.raises(errors.InvalidInput) as caught:
        validate.encodable(f"ab{BAD}", "title")
    assert caught.value.details["field"] == "title"
    assert "character 3" in caught.value.message


# -- 4. whole numbers -----------------------------------------------------------------------------
COUNT_OPTIONS = [
    (["event", "tail", "ch"], "--since"),
    (["event", "tail", "ch"], "-n"),
    (["event", "channels"], "--limit"),
    (["task", "list"], "--limit"),
    (["task", "create", "x"], "--priority"),
    (["task", "create", "x"], "--max-attempts"),
    (["task", "progress", "t1", "--agent", "a1", "--percent", "5"], "--epoch"),
    (["task", "log", "t1", "hi", "--agent", "a1"], "--epoch"),
    (["task", "complete", "t1", "--agent", "a1"], "--epoch"),
    (["task", "show", "t1"], "--log"),
    (["agent", "list"], "--limit"),
    (["context", "list"], "--limit"),
    (["status"], "--limit"),
    (["monitor"], "--limit"),
    (["monitor", "--watch"], "--count"),
    (["stale"], "--limit"),
    (["cleanup", "--dry-run"], "--keep-events"),
    (["migrate", "--to", "elsewhere", "--dry-run"], "--limit"),
    (["timer", "start"], "--max-checks"),
    (["dashboard", "--once"], "--events"),
    (["dashboard", "--once"], "--width"),
]


@pytest.mark.parametrize("value", [TOO_BIG, "99999999999999999999", "1" + "0" * 5000])
@pytest.mark.parametrize(("argv", "flag"), COUNT_OPTIONS, ids=str)
def test_whole_numbers_of_2_53_and_more_are_exit_2(
    run: Any, argv: list[str], flag: str, value: str
) -> None:
    code, out, error = run(*argv, flag, value)
    assert (code, out) == (2, ""), error
    assert error is not None and error["code"] == "invalid_input"
    assert flag in error["message"]
    assert len(error["message"]) < 300


@pytest.mark.parametrize("value", ["-1", "1e30", "1.5"])
@pytest.mark.parametrize(
    ("argv", "flag"), [a for a in COUNT_OPTIONS if a[1] != "--priority"], ids=str
)
def test_negative_or_fractional_counts_are_exit_2(
    run: Any, argv: list[str], flag: str, value: str
) -> None:
    code, _, error = run(*argv, flag, value)
    assert code == 2
    assert error is not None and flag in error["message"]


@pytest.mark.parametrize("value", [TOO_BIG, "1e30", "99999999999999999999", "-1"])
def test_event_ack_seq_is_bounded(run: Any, value: str) -> None:
    assert run("event", "emit", "ch", "t")[0] == 0
    code, _, error = run("event", "ack", "ch", "c", "--", value)
    assert code == 2
    assert error is not None and "SEQ" in error["message"]


def test_the_largest_whole_numbers_are_accepted(run: Any) -> None:
    assert run("event", "emit", "ch", "t")[0] == 0
    code, out, _ = run("event", "tail", "ch", "--since", str(MAX_INT))
    assert (code, out) == (0, "")
    assert run("task", "list", "--limit", str(MAX_INT))[0] == 0
    assert run("task", "create", "x", "--priority", f"-{MAX_INT}")[0] == 0
    assert run("task", "create", "y", "--priority", str(MAX_INT))[0] == 0


@pytest.mark.parametrize("bad", [2**53, 10**30, -1])
def test_the_api_bounds_seqs_and_counts(coord: Coordinator, bad: int) -> None:
    coord.events.emit("ch", "t")
    events = coord.events
    for call, field in [
        (lambda: events.tail("ch", since=bad), "since"),
        (lambda: events.tail("ch", n=bad), "n"),
        (lambda: events.consume("ch", "c", limit=bad), "limit"),
        (lambda: events.ack("ch", "c", bad), "seq"),
        (lambda: events.follow("ch", since=bad), "since"),
        (lambda: coord.tasks.list(limit=bad), "limit"),
        (lambda: coord.tasks.create("x", max_attempts=bad), "max attempts"),
    ]:
        with pytest.raises(errors.InvalidInput) as caught:
            call()
        assert caught.value.details.get("field") == field
    assert events.cursor("ch", "c") == 0


@pytest.mark.parametrize("bad", [2**53, -(2**53), 10**30])
def test_the_api_bounds_priorities_and_epochs(coord: Coordinator, bad: int) -> None:
    with pytest.raises(errors.InvalidInput, match="priority"):
        coord.tasks.create("x", priority=bad)
    coord.tasks.create("x", id="t1")
    coord.tasks.claim("t1", agent="a1", register=True)
    for call in (
        lambda: coord.tasks.progress("t1", agent="a1", percent=5, epoch=bad),
        lambda: coord.tasks.log("t1", "hi", agent="a1", epoch=bad),
        lambda: coord.tasks.complete("t1", agent="a1", epoch=bad),
        lambda: coord.tasks.release("t1", agent="a1", epoch=bad),
    ):
        with pytest.raises(errors.InvalidInput, match="epoch"):
            call()
    assert coord.tasks.get("t1").status == "in_progress"
