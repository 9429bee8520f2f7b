"""``coord setup TOOL`` (SPEC section 12): merge, never clobber; a second run is a no-op;
``--remove`` restores the bytes from before (or, after a user edit, takes out only our
entries); unparsable configs and planted links are refused with nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcoord.cli.main import main
from agentcoord.ops.setup import BEGIN, END, MANIFEST, TOOLS

#: The agent tools (``git`` writes into a repository's hooks directory: tests/test_setup_git.py).
ALL = [tool for tool in TOOLS if tool != "git"]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``coord`` in-process; returns (stdout, stderr) after checking the exit code."""
    monkeypatch.delenv("COORD_DIR", raising=False)
    monkeypatch.delenv("COORD_URL", raising=False)

    def run(*args: str, code: int = 0) -> tuple[str, str]:
        got = main(list(args))
        out, err = capsys.readouterr()
        assert got == code, (got, out, err)
        return out, err

    return run


def setup(cli: Any, root: Path, tool: str, *extra: str, code: int = 0) -> tuple[str, str]:
    result: tuple[str, str] = cli(
        "setup", tool, "--root", str(root), "--coord", "coord", *extra, code=code
    )
    return result


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under ``root``: bytes, mtime and mode of files; directories as such."""
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        st_ = path.lstat()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = (path.read_bytes(), st_.st_mtime_ns, st_.st_mode)
    return out


def contents(root: Path) -> dict[str, Any]:
    """:func:`snapshot` without the times: the bytes, modes and directories."""
    return {
        k: (v[0], v[2]) if isinstance(v, tuple) and len(v) == 3 else v
        for k, v in snapshot(root).items()
    }


def load(path: Path) -> Any:
    return json.loads(path.read_text())


# -- each tool ------------------------------------------------------------------------------
def test_claude_code_gets_server_hooks_and_notes(cli: Any, tmp_path: Path) -> None:
    out, _ = setup(cli, tmp_path, "claude-code")
    assert out.splitlines() == [
        "created .mcp.json",
        "created .claude/settings.json",
        "created CLAUDE.md",
        "run 'claude mcp list' to see coord connected",
    ]
    assert load(tmp_path / ".mcp.json") == {
        "mcpServers": {"coord": {"command": "coord", "args": ["mcp"]}}
    }
    assert (tmp_path / ".mcp.json").read_text().startswith('{\n  "mcpServers"')
    settings_ = load(tmp_path / ".claude" / "settings.json")
    assert settings_["enabledMcpjsonServers"] == ["coord"]
    assert settings_["hooks"] == {
        "SessionStart": [{"hooks": [{"type": "command", "command": "coord session start"}]}],
        "PreToolUse": [
            {
                "matcher": "Edit|Write|MultiEdit|NotebookEdit",
                "hooks": [{"type": "command", "command": "coord session guard"}],
            }
        ],
        "PostToolUse": [
            {"matcher": "*", "hooks": [{"type": "command", "command": "coord session beat"}]}
        ],
        "SessionEnd": [{"hooks": [{"type": "command", "command": "coord session end"}]}],
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command": "coord hook"}]}],
    }
    notes = (tmp_path / "CLAUDE.md").read_text()
    assert notes.startswith(BEGIN + "\n") and notes.endswith(END + "\n")
    assert len(notes.splitlines()) <= 27
    manifest = tmp_path / MANIFEST
    assert manifest.stat().st_mode & 0o777 == 0o600
    assert set(load(manifest)["claude-code"]) == {".mcp.json", ".claude/settings.json", "CLAUDE.md"}


def test_codex_gemini_and_cursor_get_theirs(cli: Any, tmp_path: Path) -> None:
    import tomlkit

    out, _ = cli("--json", "setup", "codex", "--root", str(tmp_path), "--coord", "coord")
    data = json.loads(out)
    assert (data["tool"], data["root"], data["dry_run"], data["remove"]) == (
        "codex",
        str(tmp_path),
        False,
        False,
    )
    assert [(f["path"], f["action"]) for f in data["files"]] == [
        (".codex/config.toml", "create"),
        (".codex/hooks.json", "create"),
        ("AGENTS.md", "create"),
    ]
    codex_hooks = load(tmp_path / ".codex" / "hooks.json")["hooks"]
    assert set(codex_hooks) == {"SessionStart", "PostToolUse", "SessionEnd"}
    assert "+[mcp_servers.coord]" in data["files"][0]["diff"]
    toml = tomlkit.loads((tmp_path / ".codex" / "config.toml").read_text()).unwrap()
    assert toml == {"mcp_servers": {"coord": {"command": "coord", "args": ["mcp"]}}}

    setup(cli, tmp_path, "gemini-cli")
    gemini = load(tmp_path / ".gemini" / "settings.json")
    assert gemini["mcpServers"] == {"coord": {"command": "coord", "args": ["mcp"]}}
    assert gemini["hooks"]["AfterTool"] == [
        {
            "matcher": "*",
            "hooks": [
                {
                    "name": "coord-beat",
                    "type": "command",
                    "command": "coord session beat --tool gemini-cli",
                }
            ],
        }
    ]
    assert set(gemini["hooks"]) == {"SessionStart", "AfterTool", "SessionEnd"}
    assert BEGIN in (tmp_path / "GEMINI.md").read_text()

    out, _ = setup(cli, tmp_path, "cursor")
    assert "created .cursor/mcp.json" in out and "unchanged AGENTS.md" in out
    assert load(tmp_path / ".cursor" / "mcp.json") == {
        "mcpServers": {"coord": {"command": "coord", "args": ["mcp"]}}
    }


@pytest.mark.parametrize("tool", ALL)
def test_a_second_run_writes_nothing(cli: Any, tmp_path: Path, tool: str) -> None:
    setup(cli, tmp_path, tool)
    before = snapshot(tmp_path)
    out, _ = setup(cli, tmp_path, tool)
    assert all(line.startswith("unchanged ") for line in out.splitlines()[:-1]), out
    assert "up to date" in out
    assert snapshot(tmp_path) == before
    out, _ = cli("--json", "setup", tool, "--root", str(tmp_path), "--coord", "coord")
    assert {f["action"] for f in json.loads(out)["files"]} == {"unchanged"}


def test_unknown_tool_is_exit_2_listing_the_tools(cli: Any, tmp_path: Path) -> None:
    _, err = setup(cli, tmp_path, "vim", code=2)
    assert "claude-code, codex, gemini-cli, cursor" in err
    _, err = setup(cli, tmp_path, "git", code=2)  # not a git repository
    assert "not a git repository" in err
    assert list(tmp_path.iterdir()) == []


# -- remove ---------------------------------------------------------------------------------
def test_remove_restores_an_empty_project(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "README").write_text("x\n")
    (tmp_path / ".claude").mkdir()  # the user's own (empty) directory stays
    before = snapshot(tmp_path)
    for tool in ALL:
        setup(cli, tmp_path, tool)
    for tool in ALL:
        setup(cli, tmp_path, tool, "--remove")
    assert snapshot(tmp_path) == before


def test_remove_takes_away_the_directories_setup_made(cli: Any, tmp_path: Path) -> None:
    for tool in ALL:
        setup(cli, tmp_path, tool)
    for tool in ["codex", "claude-code", "cursor", "gemini-cli"]:
        setup(cli, tmp_path, tool, "--remove")
    assert list(tmp_path.iterdir()) == []


USER_FILES = {
    ".mcp.json": json.dumps(
        {"mcpServers": {"db": {"command": "pg-mcp", "args": []}}, "x": [1, 2.5, None]}, indent=4
    )
    + "\n",
    ".claude/settings.json": json.dumps(
        {
            "model": "opus",
            "permissions": {"allow": ["Bash(ls:*)"]},
            "enabledMcpjsonServers": ["db"],
            "hooks": {
                "PostToolUse": [
                    {"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt.sh"}]}
                ]
            },
            "note": "héllo ☃",
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ),
    "CLAUDE.md": "# Projet\r\n\r\nRègles: ünïcode ✓\r\nno final newline",
    ".codex/config.toml": '# my codex config\nmodel = "o3"  # the fast one\n\n'
    '[mcp_servers.db]\ncommand = "pg-mcp"   # aligned\nargs = []\n',
    "AGENTS.md": "\ufeff# Agents\n\nBe nice.\n\n\n",
    ".gemini/settings.json": '{\n\t"theme": "dark",\n\t"hooks": {}\n}',
    ".cursor/mcp.json": "{}",
}


def write_user_files(root: Path) -> None:
    for rel, text in USER_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    (root / ".mcp.json").chmod(0o640)


def test_user_entries_survive_setup_and_remove_restores_their_bytes(
    cli: Any, tmp_path: Path
) -> None:
    write_user_files(tmp_path)
    before = snapshot(tmp_path)
    for tool in ALL:
        setup(cli, tmp_path, tool)
    mcp = load(tmp_path / ".mcp.json")
    assert mcp["mcpServers"]["db"] == {"command": "pg-mcp", "args": []}
    assert mcp["x"] == [1, 2.5, None]
    assert (tmp_path / ".mcp.json").read_text().startswith('{\n    "mcpServers"')  # 4 spaces
    assert (tmp_path / ".mcp.json").stat().st_mode & 0o777 == 0o640
    raw = (tmp_path / ".claude" / "settings.json").read_text()
    assert "\n" not in raw and "héllo ☃" in raw  # still one line, still unicode
    s = json.loads(raw)
    assert s["enabledMcpjsonServers"] == ["db", "coord"]
    assert s["permissions"] == {"allow": ["Bash(ls:*)"]} and s["model"] == "opus"
    post = s["hooks"]["PostToolUse"]
    assert post[0] == {"matcher": "Edit", "hooks": [{"type": "command", "command": "fmt.sh"}]}
    assert post[1]["hooks"][0]["command"] == "coord session beat"
    claude = (tmp_path / "CLAUDE.md").read_bytes()
    assert claude.startswith(
        "# Projet\r\n\r\nRègles: ünïcode ✓\r\nno final newline\r\n\r\n".encode()
    )
    assert b"\n" not in claude.replace(b"\r\n", b"") and claude.endswith(END.encode() + b"\r\n")
    toml = (tmp_path / ".codex" / "config.toml").read_text()
    assert toml.startswith(USER_FILES[".codex/config.toml"])
    assert (tmp_path / "AGENTS.md").read_bytes().startswith(b"\xef\xbb\xbf# Agents")
    assert '\t"theme": "dark"' in (tmp_path / ".gemini" / "settings.json").read_text()

    for tool in ALL:
        setup(cli, tmp_path, tool, "--remove")
    after = snapshot(tmp_path)
    assert {k: v[:1] if isinstance(v, tuple) else v for k, v in after.items()} == {
        k: v[:1] if isinstance(v, tuple) else v for k, v in before.items()
    }
    assert after[".mcp.json"][2] == before[".mcp.json"][2]  # the mode too


def test_remove_after_a_user_edit_keeps_the_edit(cli: Any, tmp_path: Path) -> None:
    write_user_files(tmp_path)
    setup(cli, tmp_path, "claude-code")
    setup(cli, tmp_path, "codex")
    settings_path = tmp_path / ".claude" / "settings.json"
    s = load(settings_path)
    s["editedByUser"] = True
    settings_path.write_text(json.dumps(s, separators=(",", ":"), ensure_ascii=False))
    claude = tmp_path / "CLAUDE.md"
    claude.write_bytes(claude.read_bytes() + b"\r\nmore notes\r\n")
    toml = tmp_path / ".codex" / "config.toml"
    toml.write_text(toml.read_text() + '\n[profiles.fast]\nmodel = "o4" # mine\n')

    out, _ = setup(cli, tmp_path, "claude-code", "--remove")
    assert "updated .claude/settings.json (changed since setup" in out
    assert "restored byte for byte" in out  # .mcp.json was not edited
    assert (tmp_path / ".mcp.json").read_text() == USER_FILES[".mcp.json"]
    got = load(settings_path)
    want = json.loads(USER_FILES[".claude/settings.json"])
    assert got == {**want, "editedByUser": True}
    assert "\n" not in settings_path.read_text()
    text = claude.read_bytes().decode()
    assert BEGIN not in text and "more notes" in text and text.startswith("# Projet\r\n")
    setup(cli, tmp_path, "codex", "--remove")
    t = toml.read_text()
    assert "mcp_servers.coord" not in t and '[profiles.fast]\nmodel = "o4" # mine' in t
    assert t.startswith(USER_FILES[".codex/config.toml"])
    assert not (tmp_path / MANIFEST).exists()


def test_a_rerun_after_a_user_edit_keeps_the_original_before(cli: Any, tmp_path: Path) -> None:
    write_user_files(tmp_path)
    setup(cli, tmp_path, "claude-code")
    manifest = load(tmp_path / MANIFEST)
    path = tmp_path / ".claude" / "settings.json"
    s = load(path)
    s["hooks"]["SessionEnd"] = []  # the user took one of ours out and added a key
    s["mine"] = 1
    path.write_text(json.dumps(s))
    out, _ = setup(cli, tmp_path, "claude-code")
    assert "updated .claude/settings.json" in out
    again = load(tmp_path / MANIFEST)
    entry = again["claude-code"][".claude/settings.json"]
    assert entry["before"] == manifest["claude-code"][".claude/settings.json"]["before"]
    assert entry["before"] == USER_FILES[".claude/settings.json"]
    setup(cli, tmp_path, "claude-code", "--remove")
    assert load(path) == {**json.loads(USER_FILES[".claude/settings.json"]), "mine": 1}


def test_a_file_created_by_setup_and_edited_by_the_user_is_kept(cli: Any, tmp_path: Path) -> None:
    setup(cli, tmp_path, "claude-code")
    (tmp_path / "CLAUDE.md").write_text((tmp_path / "CLAUDE.md").read_text() + "\nMine.\n")
    mcp = load(tmp_path / ".mcp.json")
    mcp["mcpServers"]["other"] = {"command": "x"}
    (tmp_path / ".mcp.json").write_text(json.dumps(mcp, indent=2) + "\n")
    setup(cli, tmp_path, "claude-code", "--remove")
    assert (tmp_path / "CLAUDE.md").read_text() == "\nMine.\n"  # the user's bytes only
    assert load(tmp_path / ".mcp.json") == {"mcpServers": {"other": {"command": "x"}}}
    assert not (tmp_path / ".claude").exists()


def test_remove_leaves_a_coord_server_that_is_not_ours(cli: Any, tmp_path: Path) -> None:
    setup(cli, tmp_path, "cursor")
    path = tmp_path / ".cursor" / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"coord": {"command": "mine"}}}))
    out, _ = setup(cli, tmp_path, "cursor", "--remove")
    assert load(path) == {"mcpServers": {"coord": {"command": "mine"}}}
    assert "unchanged .cursor/mcp.json" in out


def test_a_changed_coord_command_replaces_our_entries(cli: Any, tmp_path: Path) -> None:
    setup(cli, tmp_path, "claude-code")
    cli("setup", "claude-code", "--root", str(tmp_path), "--coord", "/opt/my coord")
    s = load(tmp_path / ".claude" / "settings.json")
    commands = [h["command"] for g in s["hooks"]["SessionStart"] for h in g["hooks"]]
    assert commands == ["'/opt/my coord' session start"]
    assert load(tmp_path / ".mcp.json")["mcpServers"]["coord"]["command"] == "/opt/my coord"
    cli("setup", "claude-code", "--root", str(tmp_path), "--remove")
    assert list(tmp_path.iterdir()) == []


def test_agents_md_shared_by_codex_and_cursor(cli: Any, tmp_path: Path) -> None:
    setup(cli, tmp_path, "codex")
    setup(cli, tmp_path, "cursor")
    out, _ = setup(cli, tmp_path, "codex", "--remove")
    assert "kept: coord setup cursor uses it too" in out
    assert BEGIN in (tmp_path / "AGENTS.md").read_text()
    setup(cli, tmp_path, "cursor", "--remove")
    assert list(tmp_path.iterdir()) == []


# -- conflicts, corrupt files, links, dry runs ----------------------------------------------
def test_a_different_coord_server_is_exit_4_unless_force(cli: Any, tmp_path: Path) -> None:
    theirs = '{"mcpServers": {"coord": {"command": "npx", "args": ["other-coord"]}}}\n'
    (tmp_path / ".mcp.json").write_text(theirs)
    before = snapshot(tmp_path)
    _, err = setup(cli, tmp_path, "claude-code", code=4)
    assert ".mcp.json" in err and "mcpServers.coord" in err and "--force" in err
    assert snapshot(tmp_path) == before
    _, err = cli("--json", "setup", "claude-code", "--root", str(tmp_path), "--coord", "c", code=4)
    assert json.loads(err)["error"]["code"] == "conflict"
    setup(cli, tmp_path, "claude-code", "--force")
    assert load(tmp_path / ".mcp.json")["mcpServers"]["coord"]["command"] == "coord"
    setup(cli, tmp_path, "claude-code", "--remove")
    assert (tmp_path / ".mcp.json").read_text() == theirs
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mcp.json"]


def test_a_different_coord_server_in_toml_is_exit_4(cli: Any, tmp_path: Path) -> None:
    (tmp_path / ".codex").mkdir()
    (tmp_path / ".codex" / "config.toml").write_text('[mcp_servers.coord]\ncommand = "x"\n')
    before = snapshot(tmp_path)
    _, err = setup(cli, tmp_path, "codex", code=4)
    assert "config.toml" in err and "mcp_servers.coord" in err
    assert snapshot(tmp_path) == before
    setup(cli, tmp_path, "codex", "--force")
    assert 'command = "coord"' in (tmp_path / ".codex" / "config.toml").read_text()
    setup(cli, tmp_path, "codex", "--remove")
    assert contents(tmp_path) == {
        k: (v[0], v[2]) if isinstance(v, tuple) else v for k, v in before.items()
    }


CORRUPT = [
    ("claude-code", ".mcp.json", '{"mcpServers": {', ".mcp.json:1: invalid JSON"),
    ("claude-code", ".mcp.json", '{\n  // mine\n  "a": 1\n}', ".mcp.json:2: comments"),
    ("claude-code", ".mcp.json", "[1, 2]", "top level is a list"),
    ("claude-code", ".mcp.json", '{"mcpServers": []}', "mcpServers is not an object"),
    ("claude-code", ".mcp.json", '{"a": 1,\n"a": 2}', ".mcp.json:2: duplicate key"),
    ("claude-code", ".claude/settings.json", '{"hooks": []}', "hooks is not an object"),
    (
        "claude-code",
        ".claude/settings.json",
        '{\n"hooks": {\n"PostToolUse": {}}}',
        "settings.json:3: hooks.PostToolUse is not a list",
    ),
    (
        "claude-code",
        ".claude/settings.json",
        '{"hooks": {"SessionStart": [{"hooks": "x"}]}}',
        "hooks.SessionStart[0].hooks is not a list",
    ),
    (
        "claude-code",
        ".claude/settings.json",
        '{"hooks": {"SessionStart": [3]}}',
        "hooks.SessionStart[0] is not an object",
    ),
    (
        "claude-code",
        ".claude/settings.json",
        '{"enabledMcpjsonServers": "coord"}',
        "enabledMcpjsonServers is not a list",
    ),
    ("claude-code", "CLAUDE.md", f"x\n{BEGIN}\ny\n", "CLAUDE.md:2: " + BEGIN + " without"),
    ("claude-code", "CLAUDE.md", f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n", "CLAUDE.md:3: a second"),
    ("claude-code", "CLAUDE.md", f"{END}\n{BEGIN}\n", "comes before"),
    ("claude-code", "CLAUDE.md", f"a\n{END}\n", "CLAUDE.md:2: " + END + " without"),
    ("claude-code", "CLAUDE.md", "caf\xe9", "invalid UTF-8"),
    ("codex", ".codex/config.toml", "model = \n", "config.toml:1: invalid TOML"),
    ("codex", ".codex/config.toml", "a = 1\nmcp_servers = 3\n", "config.toml:2: mcp_servers"),
    ("gemini-cli", ".gemini/settings.json", '{"hooks": {"AfterTool": 1}}', "AfterTool"),
    ("cursor", ".cursor/mcp.json", '"x"', "top level is a string"),
]


@pytest.mark.parametrize(("tool", "rel", "content", "message"), CORRUPT)
def test_an_unparsable_config_is_exit_6_and_nothing_is_written(
    cli: Any, tmp_path: Path, tool: str, rel: str, content: str, message: str
) -> None:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("latin-1") if "\xe9" in content else content.encode())
    before = snapshot(tmp_path)
    _, err = setup(cli, tmp_path, tool, code=6)
    assert message in err, err
    assert snapshot(tmp_path) == before
    setup(cli, tmp_path, tool, "--remove", code=6)
    assert snapshot(tmp_path) == before


def test_a_corrupt_manifest_is_exit_6(cli: Any, tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / MANIFEST).write_text('{"codex": {"../../etc/passwd": {"before": null}}}')
    before = snapshot(tmp_path)
    _, err = setup(cli, tmp_path, "codex", code=6)
    assert ".coordination-setup.json" in err
    assert snapshot(tmp_path) == before


def test_a_symlink_at_a_target_is_refused(cli: Any, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text("{}\n")
    (tmp_path / ".mcp.json").symlink_to(victim)
    before = snapshot(tmp_path)
    _, err = setup(cli, tmp_path, "claude-code", code=6)
    assert ".mcp.json" in err and "symbolic link" in err
    assert snapshot(tmp_path) == before
    (tmp_path / ".mcp.json").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".codex").symlink_to(elsewhere)
    _, err = setup(cli, tmp_path, "codex", code=6)
    assert ".codex" in err and "symbolic link" in err
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "AGENTS.md").exists()


def test_dry_run_writes_nothing_and_shows_the_diff(cli: Any, tmp_path: Path) -> None:
    write_user_files(tmp_path)
    before = snapshot(tmp_path)
    out, _ = setup(cli, tmp_path, "claude-code", "--dry-run")
    assert snapshot(tmp_path) == before
    assert "would update .mcp.json" in out
    assert "--- a/.mcp.json\n+++ b/.mcp.json\n" in out
    assert '+        "coord": {' in out
    assert "+" + BEGIN in out
    out, _ = cli(
        "--json", "setup", "claude-code", "--root", str(tmp_path), "--coord", "coord", "--dry-run"
    )
    data = json.loads(out)
    assert data["dry_run"] is True and snapshot(tmp_path) == before
    assert {f["path"]: f["action"] for f in data["files"]} == {
        ".mcp.json": "update",
        ".claude/settings.json": "update",
        "CLAUDE.md": "update",
    }
    setup(cli, tmp_path, "claude-code")
    after = snapshot(tmp_path)
    out, _ = setup(cli, tmp_path, "claude-code", "--remove", "--dry-run")
    assert snapshot(tmp_path) == after and "--- a/CLAUDE.md" in out


def test_default_root_is_the_git_top_level(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.setenv("PATH", os.path.dirname(shutil.which("git") or ""))
    if shutil.which("coord"):
        pytest.skip("coord is installed next to git")
    _, err = cli("setup", "cursor")
    assert "not on PATH" in err
    command = load(tmp_path / ".cursor" / "mcp.json")["mcpServers"]["coord"]["command"]
    assert os.path.isabs(command) and os.path.basename(command) == "coord"
    assert not (sub / ".cursor").exists()


# -- a property: setup then remove is the identity on any user JSON -------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
user_docs = st.dictionaries(
    st.text(max_size=8).filter(lambda k: k not in ("mcpServers", "enabledMcpjsonServers", "hooks")),
    json_values,
    max_size=4,
)
styles = st.sampled_from(
    [
        {"indent": 2},
        {"indent": 4},
        {"indent": "\t"},
        {"separators": (",", ":")},
        {"separators": (", ", ": "), "ensure_ascii": False},
    ]
)


@settings(max_examples=40)
@given(mcp=user_docs, claude=user_docs, style=styles, newline=st.booleans())
def test_setup_then_remove_restores_any_user_json(
    mcp: dict[str, Any], claude: dict[str, Any], style: dict[str, Any], newline: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".claude").mkdir()
        texts = {
            ".mcp.json": json.dumps(mcp, **style) + ("\n" if newline else ""),
            ".claude/settings.json": json.dumps(claude, **style) + ("\n" if newline else ""),
        }
        for rel, text in texts.items():
            (root / rel).write_text(text)
        args = ["setup", "claude-code", "--root", tmp, "--coord", "coord"]
        assert main([*args, "-q"]) == 0
        once = snapshot(root)
        assert main([*args, "-q"]) == 0
        assert snapshot(root) == once
        assert json.loads((root / ".mcp.json").read_text())["mcpServers"]["coord"]
        settings_ = json.loads((root / ".claude" / "settings.json").read_text())
        assert {k: v for k, v in settings_.items() if k in claude} == claude
        # a user edit in between: the removal is structural and keeps it
        (root / ".claude" / "settings.json").write_text(json.dumps({**settings_, "zz!": 1}))
        assert main([*args, "-q", "--remove"]) == 0
        assert (root / ".mcp.json").read_text() == texts[".mcp.json"]
        assert json.loads((root / ".claude" / "settings.json").read_text()) == {
            **claude,
            "zz!": 1,
        }
        assert not (root / MANIFEST).exists()


# -- review findings (issue 17) ----------------------------------------------------------------
def test_the_entry_claude_mcp_add_writes_is_ours_already(cli: Any, tmp_path: Path) -> None:
    """``claude mcp add -s project coord -- coord mcp`` writes ``type`` and an empty ``env``:
    the same server, left as it is (not exit 4)."""
    added = {
        "mcpServers": {"coord": {"type": "stdio", "command": "coord", "args": ["mcp"], "env": {}}}
    }
    (tmp_path / ".mcp.json").write_text(json.dumps(added))
    before = (tmp_path / ".mcp.json").read_bytes()
    setup(cli, tmp_path, "claude-code")
    assert (tmp_path / ".mcp.json").read_bytes() == before
    setup(cli, tmp_path, "claude-code", "--remove")
    assert (tmp_path / ".mcp.json").read_bytes() == before  # it was not setup's to take out


def test_files_too_big_to_keep_in_the_manifest_are_refused(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "CLAUDE.md").write_text("\x01" * (1 << 20) + "\n")
    _, err = setup(cli, tmp_path, "claude-code", code=6)
    assert "CLAUDE.md" in err
    assert not (tmp_path / ".mcp.json").exists()
    assert not (tmp_path / ".claude").exists()


def test_a_tampered_manifest_cannot_remove_other_directories(cli: Any, tmp_path: Path) -> None:
    setup(cli, tmp_path, "claude-code")
    manifest = tmp_path / ".claude" / ".coordination-setup.json"
    data = json.loads(manifest.read_text())
    data["claude-code"]["CLAUDE.md"]["created_dirs"] = ["src", ".git/refs"]
    manifest.write_text(json.dumps(data))
    (tmp_path / "src").mkdir()
    _, err = setup(cli, tmp_path, "claude-code", "--remove", code=6)
    assert "setup writes" in err
    assert (tmp_path / "src").is_dir()


def test_two_setups_at_once_keep_both_records(tmp_path: Path) -> None:
    import subprocess
    import sys

    for round_ in range(4):
        root = tmp_path / f"r{round_}"
        root.mkdir()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agentcoord",
                    "setup",
                    tool,
                    "--root",
                    str(root),
                    "--coord",
                    "coord",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for tool in ("claude-code", "codex", "gemini-cli")
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        manifest = json.loads((root / ".claude" / ".coordination-setup.json").read_text())
        assert set(manifest) == {"claude-code", "codex", "gemini-cli"}
