"""Escaping and the tolerant document parser (``agentcoord.store.markdown.codec.text``)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcoord.errors import CorruptData
from agentcoord.store.markdown.codec.text import (
    escape_block,
    escape_line,
    fmt_number,
    json_block,
    normalize_block,
    parse_doc,
    unescape_block,
    unescape_line,
)

# Every character Python's str.splitlines treats as a line break.
BREAKS = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1]
STRUCTURAL_STARTS = ("#", "`", "~", "*", "-")

TRICKY = [
    *BREAKS,
    "\r\n",
    "\t",
    "\x00",
    "\x7f",
    "\x1b[31m",
    "`",
    "```",
    "```json",
    "~~~",
    "## ",
    "# ",
    "### Task: x (p)",
    "**Status**: complete",
    "- **Task ID**: evil",
    " ",
    "  ",
    "\xa0",
    "\u3000",
    "\\",
    "\\n",
    "\\x41",
    "\\u00",
    "(",
    ")",
    "*",
    ":",
    ",",
    "-",
    "Workload: 99",
    "[2025-01-01 00:00:00] ",
    "✅",
    "😀",
]
# Arbitrary unicode (control characters included) mixed with fragments that look like structure.
texts = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(TRICKY)), max_size=6).map("".join)


def test_break_characters_are_the_expected_set() -> None:
    # Guards the premise of the tests below: if Python adds a break character, we want to know.
    assert set(BREAKS) == set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@pytest.mark.parametrize("ch", BREAKS)
def test_every_break_character_is_escaped(ch: str) -> None:
    out = escape_line(f"x{ch}y{ch}")
    assert not any(b in out for b in BREAKS)
    assert unescape_line(out) == f"x{ch}y{ch}"


@settings(max_examples=300, deadline=None)
@given(texts)
def test_escape_line_round_trip_and_shape(value: str) -> None:
    out = escape_line(value)
    assert unescape_line(out) == value
    assert len(out.splitlines()) <= 1
    assert not any(b in out for b in BREAKS)
    assert not out.startswith(STRUCTURAL_STARTS)
    # Field parsing strips surrounding whitespace, so escaped values must not have any.
    assert out == out.strip()


@settings(max_examples=200, deadline=None)
@given(texts)
def test_escaped_value_survives_as_a_field(value: str) -> None:
    doc = parse_doc(f"# T\n\n**Key**: {escape_line(value)}\n**Other**: 1\n", "f")
    got = doc.field("key")
    assert got is not None
    assert unescape_line(got[0]) == value
    assert doc.field("other") == ("1", 4)
    assert doc.sections == []


@settings(max_examples=200, deadline=None)
@given(texts)
def test_escape_block_round_trip_and_cannot_start_structure(text: str) -> None:
    out = escape_block(text)
    lines = out.split("\n")
    assert unescape_block(lines) == text
    for line in lines:
        assert not line.startswith(STRUCTURAL_STARTS)
        assert not any(b in line for b in BREAKS)
    doc = parse_doc(f"# T\n\n## Notes\n\n{out}\n\n## Tail\n", "f")
    assert [s.heading for s in doc.sections] == ["Notes", "Tail"]
    notes = doc.section("notes")
    assert notes is not None
    assert unescape_block(notes.body()) == normalize_block(text)


def test_unescape_tolerates_what_people_type() -> None:
    assert unescape_line("C:\\path") == "C:path"
    assert unescape_line("\\U00110000") == "\\U00110000"  # out of range: kept visible
    assert unescape_line("trailing \\") == "trailing \\"


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15))
def test_fmt_number_is_exact(value: float) -> None:
    text = fmt_number(value)
    assert float(text) == value
    if value == int(value) and abs(value) < 1e15:
        assert "." not in text and "e" not in text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(texts, json_values, max_size=4))
def test_json_block_is_parseable_and_has_no_backticks_inside(data: dict[str, object]) -> None:
    block = json_block(data).split("\n")
    assert block[0] == "```json"
    assert block[-1] == "```"
    body = block[1:-1]
    assert not any("`" in line for line in body)
    assert json.loads("\n".join(body)) == data


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_doc_returns_a_document_or_corrupt_data(text: str) -> None:
    try:
        doc = parse_doc(text, "f")
    except CorruptData as exc:  # a conflict marker or a repeated header field, with its line
        problem: CorruptData | None = exc
    else:
        problem = None
    if problem is not None:
        assert problem.line >= 1 and problem.path == "f"
        return
    for section in doc.sections:
        section.fields()
        section.body()
        section.fenced()
        section.fenced("json")


def test_parse_doc_structure_and_line_numbers() -> None:
    text = (
        "# Task: x\n"
        "\n"
        "**Status**: pending\n"
        "\n"
        "## Metrics\n"
        "\n"
        "```json\n"
        "## not a heading inside a fence\n"
        "```\n"
        "## Logs\n"
        "- **Step**: 3\n"
    )
    doc = parse_doc(text, "p")
    assert doc.title == "Task: x"
    assert doc.title_line == 1
    assert doc.field("Status") == ("pending", 3)
    assert [(s.heading, s.line) for s in doc.sections] == [("Metrics", 5), ("Logs", 10)]
    metrics = doc.section("metrics")
    assert metrics is not None
    assert metrics.fenced("json") == (7, ["## not a heading inside a fence"])
    logs = doc.section("LOGS")
    assert logs is not None
    assert logs.fields() == {"step": ("3", 11)}
    err = doc.corrupt(9, "why")
    assert (err.path, err.line, err.reason) == ("p", 9, "why")
    assert str(err) == "p:9: why"
    assert math.isclose(float(fmt_number(0.1)), 0.1)


def test_a_repeated_header_field_is_corrupt_not_first_wins() -> None:
    with pytest.raises(CorruptData, match="given twice") as info:
        parse_doc("# Task: x\n\n**Status**: pending\n**status**: complete\n", "p")
    assert info.value.line == 4


@pytest.mark.timeout(60)  # quadratic matching took minutes on this input; linear takes ms
def test_regression_field_value_with_long_space_run_is_linear() -> None:
    doc = parse_doc("**A**: a" + " " * 200_000 + "b\n", "f")
    got = doc.field("a")
    assert got is not None
    assert got[0].endswith("b")
