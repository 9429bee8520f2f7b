"""The docs keep up with the code: every command has its section in docs/cli.md, and the pages
the README links to exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from agentcoord.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_is_in_the_cli_reference() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    missing = [c for c in COMMANDS if f"### `coord {c}`" not in text]
    assert not missing, f"run scripts/gen_cli_docs.py: {missing} missing from docs/cli.md"


def test_the_cli_reference_is_the_commands_own_help(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/cli.md's reference is generated: any change to a command's help must regenerate
    it (``.venv/bin/python scripts/gen_cli_docs.py``)."""
    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    monkeypatch.setenv("COLUMNS", "100")
    text = (ROOT / "docs" / "cli.md").read_text()
    assert text.split(gen.MARK, 1)[1] == gen.reference().split(gen.MARK, 1)[1], (
        "docs/cli.md is out of date: run scripts/gen_cli_docs.py"
    )


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.lstrip().startswith("# agentcoord")
    first_commands = readme.split("```")[1]
    assert "make demo" in first_commands
    assert "make test" in first_commands
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))\)", readme):
        assert (ROOT / target).exists(), target
