"""Workspace discovery and ``coord init`` (SPEC section 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agentcoord import errors
from agentcoord.cli.main import main
from agentcoord.workspace import GITIGNORE_BLOCK, find_root, init_workspace


def test_init_creates_layout_at_git_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    ws, actions = init_workspace()
    root = tmp_path / ".claude" / "coordination"
    assert ws.root == str(root)
    assert (root / "README.md").is_file()
    assert (root / ".gitkeep").is_file()
    assert (root / "archive").is_dir()
    assert actions
    gitignore = (tmp_path / ".gitignore").read_text()
    for line in GITIGNORE_BLOCK:
        assert gitignore.count(line + "\n") == 1
    # Idempotent: nothing more to do, nothing duplicated.
    _, again = init_workspace()
    assert again == []
    assert (tmp_path / ".gitignore").read_text() == gitignore


def test_gitignore_keeps_readme_and_gitkeep_tracked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    ws, _ = init_workspace()
    (Path(ws.root) / "task-x.md").write_text("x")
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".claude/coordination/README.md" in out
    assert ".claude/coordination/.gitkeep" in out
    assert "task-x.md" not in out


def test_existing_gitignore_appended_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/")
    monkeypatch.chdir(tmp_path)
    init_workspace()
    init_workspace()
    text = (tmp_path / ".gitignore").read_text()
    assert text.startswith("node_modules/\n")
    assert text.count(".claude/coordination/*") == 1


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    (project / ".claude" / "coordination").mkdir(parents=True)
    inner = project / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    monkeypatch.delenv("COORD_DIR", raising=False)
    assert find_root() == str(project / ".claude" / "coordination")
    monkeypatch.setenv("COORD_DIR", str(tmp_path / "env"))
    assert find_root() == str(tmp_path / "env")
    assert find_root(str(tmp_path / "flag")) == str(tmp_path / "flag")


def test_no_workspace_is_exit_3_with_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COORD_DIR", raising=False)
    monkeypatch.delenv("COORD_URL", raising=False)
    with pytest.raises(errors.NotFound):
        find_root()
    assert main(["task", "list"]) == 3
    assert "coord init" in capsys.readouterr().err


def test_cli_init_with_dir_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ws"
    assert main(["--json", "--dir", str(target), "init"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["root"] == str(target)
    assert data["backend"] == "markdown"
    assert (target / "README.md").exists()


def test_init_url_unreachable_is_exit_5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--dir", str(tmp_path / "ws"), "init", "--url", "redis://:secret@127.0.0.1:1/0"])
    err = capsys.readouterr().err
    assert code == 5
    assert "secret" not in err
    assert not (tmp_path / "ws" / "config.json").exists()


def test_corrupt_config_is_exit_6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws, _ = init_workspace(str(tmp_path / "ws"))
    (Path(ws.root) / "config.json").write_text("{not json")
    assert main(["--dir", ws.root, "task", "list"]) == 6
    assert "config.json:1" in capsys.readouterr().err


SPLIT_BRAIN = [
    ({"backend": "redis"}, "backend"),
    ({"backend": "Redis", "url": "redis://127.0.0.1:6399/0"}, "backend"),
    ({"url": "redis://127.0.0.1:6399/0"}, "url"),
]


@pytest.mark.parametrize(("config", "key"), SPLIT_BRAIN)
@pytest.mark.parametrize("command", [("task", "list"), ("task", "create", "lost write")])
def test_a_half_configured_redis_never_falls_back_to_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: dict[str, str],
    key: str,
    command: tuple[str, ...],
) -> None:
    """Issue 15, item 4: these used to select markdown silently (split brain). Now exit 6
    naming the key, and the create writes nothing at all (no task, lock, counter or index)."""
    ws, _ = init_workspace(str(tmp_path / "ws"))
    (Path(ws.root) / "config.json").write_text(json.dumps(config))

    def files() -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in Path(ws.root).rglob("*") if p.is_file()}

    before = files()
    dirs = sorted(p for p in Path(ws.root).rglob("*") if p.is_dir())
    assert main(["--dir", ws.root, *command]) == 6
    err = capsys.readouterr().err
    assert f"config key '{key}'" in err and "config.json:1:" in err
    assert files() == before
    assert sorted(p for p in Path(ws.root).rglob("*") if p.is_dir()) == dirs
