"""``coord setup``'s configs, read by the real agent CLIs (SPEC section 12; issue 17).

Each test writes a project's config with ``coord setup`` and asks the real CLI (installed from
npm by ``make test``'s setup under CI, ``scripts/system-deps.sh``) what it makes of it, in a
throw-away home directory that trusts the project (what a user's first interactive start asks):

- Claude Code: ``claude mcp list`` starts the server from ``.mcp.json`` and reports it
  "Connected"; ``claude mcp get coord`` names the project scope. (``mcp list`` also runs the
  project's SessionEnd hook with a throw-away session id: it must leave the board as it was.)
- Gemini CLI: ``gemini mcp list`` connects to the server from ``.gemini/settings.json``.
- Codex CLI: ``codex mcp list`` / ``get`` read ``.codex/config.toml`` (Codex does not start the
  server there).

A CLI that is not installed skips its test with the reason, except under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import COORD

COORD_BIN = str(Path(sys.executable).with_name("coord"))
CI = os.environ.get("CI") == "true"


def need(cli: str) -> str:
    path = shutil.which(cli)
    if path is None:
        if CI:
            pytest.fail(f"{cli} is not installed (scripts/system-deps.sh installs it under CI)")
        pytest.skip(f"{cli} is not installed: npm i -g the version in scripts/system-deps.sh")
    return path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COORD_DIR", "COORD_URL")}
    env.update(HOME=str(home), DISABLE_AUTOUPDATER="1", NO_COLOR="1", **extra)
    return env


def project(tmp_path: Path, tool: str) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for args in (["init"], ["setup", tool, "--root", str(root), "--coord", COORD_BIN]):
        done = subprocess.run(
            [*COORD, *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
    return root


def cli(argv: list[str], root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def agents(root: Path) -> list[object]:
    done = subprocess.run(
        [*COORD, "--json", "agent", "list", "--all"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed: list[object] = json.loads(done.stdout)
    return listed


def test_claude_code_connects_to_the_server_setup_configured(tmp_path: Path) -> None:
    claude = need("claude")
    root = project(tmp_path, "claude-code")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "projects": {str(root): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    env = env_for(home)
    listed = cli([claude, "mcp", "list"], root, env)
    assert listed.returncode == 0, listed.stderr
    line = next((x for x in listed.stdout.splitlines() if x.startswith("coord:")), "")
    assert "Connected" in line and COORD_BIN in line, listed.stdout
    got = cli([claude, "mcp", "get", "coord"], root, env)
    assert got.returncode == 0, got.stderr
    assert "Project config" in got.stdout and "Connected" in got.stdout, got.stdout
    assert agents(root) == []  # the SessionEnd hook mcp list ran registered nobody


def test_gemini_cli_connects_to_the_server_setup_configured(tmp_path: Path) -> None:
    gemini = need("gemini")
    root = project(tmp_path, "gemini-cli")
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(home, GEMINI_CLI_TRUST_WORKSPACE="true")
    listed = cli([gemini, "mcp", "list"], root, env)
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout + listed.stderr
    line = next((x for x in out.splitlines() if "coord:" in x), "")
    assert "Connected" in line and "Disconnected" not in line, out


def test_codex_reads_the_server_setup_configured(tmp_path: Path) -> None:
    codex = need("codex")
    root = project(tmp_path, "codex")
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(f'[projects."{root}"]\ntrust_level = "trusted"\n')
    env = env_for(home, CODEX_HOME=str(codex_home))
    listed = cli([codex, "mcp", "list", "--json"], root, env)
    assert listed.returncode == 0, listed.stderr
    servers = json.loads(listed.stdout)
    mine = [s for s in servers if s.get("name") == "coord"]
    assert mine, listed.stdout
    got = cli([codex, "mcp", "get", "coord"], root, env)
    assert got.returncode == 0, got.stderr
    assert COORD_BIN in got.stdout, got.stdout
