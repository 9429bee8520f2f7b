"""Context documents: put/get/list (every backend), the CLI, the seed's sed+jq recipe, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agentcoord.api import Coordinator
from agentcoord.cli.main import main
from agentcoord.errors import Conflict, InvalidInput, InvalidName, NotFound
from agentcoord.workspace import Config, Workspace

from .conftest import T0, FakeClock

SEED_DATA = {
    "path": "data/processed/alice/",
    "manifest_path": "data/processed/alice/manifest.csv",
    "segments_count": 1847,
    "segments_kept": 1812,
    "average_quality": 0.964,
}


# -- domain (conformance) ----------------------------------------------------------------------
def test_put_get_list(coord: Coordinator, clock: FakeClock) -> None:
    doc = coord.contexts.put(
        "proj-1",
        "dataset",
        SEED_DATA,
        title="Dataset Context: Project 1",
        text="Ready for training.\n\n## Splits\n\n| Split | Count |",
        created_by="data-engineer (task-122)",
    )
    assert doc.updated_at == T0
    got = coord.contexts.get("proj-1", "dataset")
    assert got.data == SEED_DATA
    assert got.title == "Dataset Context: Project 1"
    assert got.created_by == "data-engineer (task-122)"
    assert "## Splits" in got.text
    clock.advance(10)
    coord.contexts.put("proj-1", "model", '{"arch": "vits"}')
    coord.contexts.put("proj-0", "zeta", {})
    assert [(d.project, d.domain) for d in coord.contexts.list()] == [
        ("proj-0", "zeta"),
        ("proj-1", "dataset"),
        ("proj-1", "model"),
    ]
    assert [d.domain for d in coord.contexts.list(project="proj-1")] == ["dataset", "model"]
    # put replaces the whole document.
    coord.contexts.put("proj-1", "dataset", {"segments_count": 1})
    again = coord.contexts.get("proj-1", "dataset")
    assert again.data == {"segments_count": 1}
    assert again.title == "" and again.text == ""


def test_get_missing_is_not_found(coord: Coordinator) -> None:
    with pytest.raises(NotFound):
        coord.contexts.get("nope", "nothing")


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{"a": 1,}', 1, 9),
        ('{\n  "a": 1\n  "b": 2\n}', 3, 3),
        ("", 1, 1),
        ("{'a': 1}", 1, 2),
    ],
)
def test_invalid_json_names_line_and_column(
    coord: Coordinator, text: str, line: int, column: int
) -> None:
    with pytest.raises(InvalidInput) as info:
        coord.contexts.put("p", "d", text)
    assert info.value.details["line"] == line
    assert info.value.details["column"] == column
    assert f"line {line}, column {column}" in info.value.message


@pytest.mark.parametrize(
    "text", ["[1, 2]", '"text"', "42", "null", '{"x": NaN}', '{"x": Infinity}']
)
def test_only_json_objects_without_nan(coord: Coordinator, text: str) -> None:
    with pytest.raises(InvalidInput):
        coord.contexts.put("p", "d", text)
    assert coord.contexts.list() == []


def test_size_limit_clear_error(coord: Coordinator) -> None:
    small = Coordinator(
        coord.store,
        config=Config({"context_max_bytes": 100}),
        workspace=coord.workspace,
        clock=coord.clock,
    )
    small.contexts.put("p", "d", {"k": "v" * 50})
    with pytest.raises(InvalidInput) as info:
        small.contexts.put("p", "d", {"k": "v" * 200})
    assert "the limit is 100 bytes" in info.value.message
    assert "context_max_bytes" in info.value.message
    assert info.value.details["size"] > 100
    with pytest.raises(InvalidInput):  # the free text counts too
        small.contexts.put("p", "d", {}, text="x" * 200)
    with pytest.raises(InvalidInput):  # huge raw text is refused before it is parsed
        small.contexts.put("p", "d", "[" * 10_000)
    assert small.contexts.get("p", "d").data == {"k": "v" * 50}


@pytest.mark.parametrize(("project", "domain"), [("a/b", "d"), ("p", "../x"), ("", "d"), ("p", "")])
def test_bad_names(coord: Coordinator, project: str, domain: str) -> None:
    with pytest.raises(InvalidName):
        coord.contexts.put(project, domain, {})


def test_bad_title_and_creator(coord: Coordinator) -> None:
    with pytest.raises(InvalidInput):
        coord.contexts.put("p", "d", {}, title="two\nlines")
    with pytest.raises(InvalidInput):
        coord.contexts.put("p", "d", {}, created_by="x" * 500)


def test_file_name_collision_is_a_conflict(coord: Coordinator) -> None:
    coord.contexts.put("a-b", "c", {"first": True})
    with pytest.raises(Conflict):
        coord.contexts.put("a", "b-c", {"second": True})
    assert coord.contexts.get("a-b", "c").data == {"first": True}


# -- CLI -----------------------------------------------------------------------------------------
@pytest.fixture
def run(workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``coord`` in-process; ``stdin`` text is fed through a pipe-like stream."""
    import io
    import sys

    monkeypatch.setenv("COORD_DIR", workspace.root)
    monkeypatch.delenv("COORD_URL", raising=False)

    def _run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_cli_put_stdin_get_is_json_only_and_seed_recipe(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(
        "--json",
        "context",
        "put",
        "proj1",
        "dataset",
        "--title",
        "Dataset Context",
        "--text",
        "notes with ```json\n{} fences``` inside",
        "--by",
        "data-engineer",
        stdin=json.dumps(SEED_DATA, indent=2),
    )
    assert code == 0
    row = json.loads(out)
    assert (row["project"], row["domain"], row["keys"]) == ("proj1", "dataset", 5)
    assert row["created_by"] == "data-engineer"
    code, out, _ = run("context", "get", "proj1", "dataset")
    assert code == 0 and json.loads(out) == SEED_DATA
    code, out, _ = run("--json", "context", "get", "proj1", "dataset")
    assert json.loads(out) == SEED_DATA
    code, out, _ = run("--json", "context", "get", "proj1", "dataset", "--full")
    assert json.loads(out)["text"].startswith("notes with")

    path = Path(workspace.root) / "context-proj1-dataset.md"
    block = subprocess.run(
        ["sh", "-c", "sed -n '/```json/,/```/p' \"$0\" | sed '1d;$d'", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(block)["segments_count"] == 1847
    if shutil.which("jq"):
        count = subprocess.run(
            [
                "sh",
                "-c",
                "sed -n '/```json/,/```/p' \"$0\" | sed '1d;$d' | jq '.segments_count'",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert count.strip() == "1847"


def test_cli_put_from_file_and_text_file_and_list(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.json"
    data.write_text('{"arch": "vits", "params": 42}')
    notes = tmp_path / "notes.md"
    notes.write_text("line one\nline two\n")
    code, out, _ = run(
        "context", "put", "p", "model", "--file", str(data), "--text-file", str(notes)
    )
    assert code == 0 and out.startswith("stored context p/model")
    run("context", "put", "p", "data", stdin="{}")
    code, out, _ = run("--json", "context", "list", "--fields", "project,domain,keys")
    assert json.loads(out) == [
        {"project": "p", "domain": "data", "keys": 0},
        {"project": "p", "domain": "model", "keys": 2},
    ]
    code, out, err = run("--json", "context", "list", "--limit", "1")
    assert len(json.loads(out)) == 1 and "showing 1 of 2" in err
    code, out, _ = run("context", "get", "p", "model", "--full")
    assert json.loads(out)["text"] == "line one\nline two"


@pytest.mark.parametrize(
    ("args", "stdin", "code", "error", "needle"),
    [
        (["p", "d"], '{"a": 1,,}', 2, "invalid_input", "line 1, column 9"),
        (["p", "d"], '{\n"a": [1,\n2\n}', 2, "invalid_input", "line 4, column 1"),
        (["p", "d"], "[1, 2]", 2, "invalid_input", "must be a JSON object"),
        (["p", "d"], '{"k": "' + "x" * 300_000 + '"}', 2, "invalid_input", "the limit is"),
        (["a/b", "d"], "{}", 2, "invalid_name", "invalid project"),
        (["p", "x/y"], "{}", 2, "invalid_name", "invalid domain"),
        (["p", "d", "--file", "/nonexistent/file.json"], None, 2, "invalid_input", "cannot read"),
        (["p", "d", "--title", "a\nb"], "{}", 2, "invalid_input", "one line"),
    ],
)
def test_cli_put_bad_input(  # type: ignore[no-untyped-def]
    run, args: list[str], stdin: str | None, code: int, error: str, needle: str
) -> None:
    got, out, err = run("--json", "context", "put", *args, stdin=stdin)
    assert (got, out) == (code, "")
    payload = json.loads(err)["error"]
    assert payload["code"] == error
    assert needle in payload["message"]
    assert run("--json", "context", "list")[1].strip() == "[]"


def test_cli_invalid_json_details(run) -> None:  # type: ignore[no-untyped-def]
    _, _, err = run("--json", "context", "put", "p", "d", stdin='{\n  "a": tru\n}')
    payload = json.loads(err)["error"]
    assert (payload["line"], payload["column"]) == (2, 8)
    _, _, err = run("context", "put", "p", "d", stdin="{oops}")
    assert err.startswith("coord: error: invalid JSON in stdin at line 1, column 2")


def test_cli_get_missing_exit_3_and_corrupt_exit_6(run, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    assert run("context", "get", "p", "d")[0] == 3
    path = Path(workspace.root) / "context-p-d.md"
    text = "# Context: p/d\n\n**Project**: p\n**Domain**: d\n\n## Data\n\n```json\n{broken\n```\n"
    path.write_text(text)
    code, _, err = run("context", "get", "p", "d")
    assert code == 6 and "context-p-d.md:" in err
    assert run("context", "put", "p", "d", stdin="{}")[0] == 6
    assert path.read_text() == text
    code, out, err = run("--json", "context", "list")
    assert (code, json.loads(out)) == (0, []) and "unreadable" in err
