"""The context codec: round trip, hostile text, the seed's sed + jq recipe, corrupt files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcoord.core.clock import round_ms
from agentcoord.core.models import ContextDoc
from agentcoord.errors import CorruptData, InvalidName
from agentcoord.store.markdown.codec.context import parse_context, render_context
from agentcoord.store.markdown.codec.text import normalize_block

HOSTILE = [
    "```json",
    "```",
    "````",
    "\\```",
    "~~~",
    "## Data",
    "## Notes",
    "# Title",
    "**Project**: evil",
    "---",
    "`inline` and ``double``",
    "a```json{}```b",
    "Context: p/d",
    "-",
    "\r\x85\u2028\u2029\x0b",
    "\\",
    " ",
    "",
]

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
texts = st.one_of(
    st.text(), st.sampled_from(HOSTILE), st.lists(st.sampled_from(HOSTILE)).map("".join)
)
blocks = st.one_of(texts, st.lists(texts).map("\n".join))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
datas = st.dictionaries(texts, json_values, max_size=5)
times = st.integers(0, 4_102_444_799_999).map(lambda ms: round_ms(ms / 1000))


@st.composite
def docs(draw: st.DrawFn) -> ContextDoc:
    project, domain = draw(names), draw(names)
    title = draw(st.one_of(texts, st.just(f"Context: {project}/{domain}")))
    return ContextDoc(
        project,
        domain,
        data=draw(datas),
        title=title,
        text=draw(blocks),
        updated_at=draw(times),
        created_by=draw(st.one_of(st.none(), texts)),
    )


@settings(max_examples=300, deadline=None)
@given(doc=docs())
def test_round_trip(doc: ContextDoc) -> None:
    text = render_context(doc)
    back = parse_context(text, f"context-{doc.project}-{doc.domain}.md")
    expected = doc.copy()
    expected.text = normalize_block(doc.text)  # documented: notes are stored without blank ends
    assert back == expected
    # Only the data block has a triple backtick, and hostile text adds no line for any reader.
    assert text.count("```") == 2
    assert len(text.splitlines()) == text.count("\n")
    headings = [line for line in text.split("\n") if line.startswith("#")]
    assert headings[1:] in (["## Data"], ["## Data", "## Notes"])


def _seed_recipe(path: Path) -> str:
    """The seed's recipe, minus jq: sed -n '/```json/,/```/p' FILE | sed '1d;$d'."""
    first = subprocess.run(
        ["sed", "-n", "/```json/,/```/p", str(path)], capture_output=True, text=True, check=True
    )
    second = subprocess.run(
        ["sed", "1d;$d"], input=first.stdout, capture_output=True, text=True, check=True
    )
    return second.stdout


@pytest.mark.skipif(shutil.which("sed") is None, reason="needs sed")
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=docs())
def test_seed_sed_recipe_extracts_the_data(tmp_path: Path, doc: ContextDoc) -> None:
    path = tmp_path / "context.md"
    path.write_text(render_context(doc), encoding="utf-8")
    assert json.loads(_seed_recipe(path)) == doc.data


@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
def test_seed_jq_recipe(tmp_path: Path) -> None:
    doc = ContextDoc(
        "proj-1",
        "dataset",
        data={"segments_count": 1847, "note": "```json ``` `"},
        title="Dataset ```json Context",
        text='```json\n{"segments_count": 0}\n```',
    )
    path = tmp_path / "context-proj-1-dataset.md"
    path.write_text(render_context(doc), encoding="utf-8")
    out = subprocess.run(
        ["jq", ".segments_count"],
        input=_seed_recipe(path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.stdout.strip() == "1847"


def test_layout() -> None:
    doc = ContextDoc(
        "proj-1",
        "dataset",
        data={"segments_count": 1},
        title="Dataset Context",
        text="hello",
        updated_at=1760262600.0,
        created_by="data-engineer (task-122)",
    )
    lines = render_context(doc).split("\n")
    assert lines[:7] == [
        "# Dataset Context",
        "",
        "**Project**: proj-1",
        "**Domain**: dataset",
        "**Last Updated**: 2025-10-12T09:50:00Z",
        "**Created By**: data-engineer (task-122)",
        "",
    ]
    assert lines[7:10] == ["## Data", "", "```json"]
    assert lines[-4:] == ["## Notes", "", "hello", ""]
    assert render_context(ContextDoc("p", "d")).startswith("# Context: p/d\n")


SEED = """# Dataset Context: Project 1 (Alice Voice Clone)

**Project**: proj-1
**Last Updated**: 2025-10-12T09:50:00Z
**Created By**: data-engineer (task-122)

## Dataset Information

```json
{
  "path": "data/processed/alice/",
  "segments_count": 1847
}
```

## Splits

| Split | Count |
| ----- | ----- |
| Train | 1450  |
"""


def test_reads_a_seed_style_file() -> None:
    doc = parse_context(SEED, "/w/context-proj-1-dataset.md")
    assert (doc.project, doc.domain) == ("proj-1", "dataset")
    assert doc.data == {"path": "data/processed/alice/", "segments_count": 1847}
    assert doc.title == "Dataset Context: Project 1 (Alice Voice Clone)"
    assert doc.created_by == "data-engineer (task-122)"
    assert doc.text.startswith("## Splits\n\n| Split | Count |")
    # Rewriting keeps everything readable and parseable.
    again = parse_context(render_context(doc), "/w/context-proj-1-dataset.md")
    assert again.data == doc.data
    assert again.text == doc.text


def _corrupt(text: str, path: str = "/w/context-p-d.md") -> CorruptData:
    with pytest.raises(CorruptData) as info:
        parse_context(text, path)
    return info.value


def test_corrupt_files_name_the_line() -> None:
    good = render_context(ContextDoc("p", "d", data={"a": 1}))
    lines = good.split("\n")
    assert "Project" in _corrupt("").reason
    err = _corrupt(good.replace('"a": 1', '"a": 1,'))
    assert err.path == "/w/context-p-d.md"
    assert "json" in err.reason
    assert lines[err.line - 1] == "}"
    err = _corrupt(good.replace('{\n  "a": 1\n}', "[1]"))
    assert "object" in err.reason
    assert "timestamp" in _corrupt(good.replace("1970-01-01T00:00:00Z", "soon")).reason
    assert "project" in _corrupt(good.replace("**Project**: p", "**Project**: ../x")).reason
    assert "Domain" in _corrupt(good.replace("**Domain**: d\n", ""), "/w/other.md").reason
    assert "json" in _corrupt(good.replace("```json", "```text")).reason


def test_render_refuses_bad_names() -> None:
    with pytest.raises(InvalidName):
        render_context(ContextDoc("../p", "d"))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_the_json_block_are_corrupt(number: str) -> None:
    text = f'# Context: p/d\n\n**Project**: p\n**Domain**: d\n\n## Data\n\n```json\n{{"x": {number}}}\n```\n'
    with pytest.raises(CorruptData):
        parse_context(text, "context-p-d.md")
