"""``reservations.md``: round trip and escaping (SPEC section 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcoord.core.clock import round_ms
from agentcoord.core.models import Reservation
from agentcoord.core.paths import normalize
from agentcoord.errors import CorruptData
from agentcoord.store.markdown.codec.reservation import parse_reservations, render_reservations
from agentcoord.store.markdown.codec.text import parse_doc

NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
PATTERN_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\\/\x85"
)
SEGMENTS = st.text(PATTERN_CHARS, min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..") and s == s.strip()
)
PATTERNS = st.lists(SEGMENTS, min_size=1, max_size=3).map("/".join).map(normalize)
REASONS = st.one_of(
    st.none(),
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x85"),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s.strip(" \t") == s and s.strip()),
    st.sampled_from(["-", "## Reservation: x", "**Agent**: evil", "```", "\\x60", "- \\n"]),
)
TIMES = st.integers(0, 253402300799000).map(lambda ms: round_ms(ms / 1000))  # as stores keep


@st.composite
def reservations(draw: st.DrawFn) -> list[Reservation]:
    ids = draw(st.lists(NAMES, max_size=4, unique=True))
    out = []
    for rid in ids:
        out.append(
            Reservation(
                rid,
                draw(NAMES),
                draw(st.lists(PATTERNS, min_size=1, max_size=3, unique=True)),
                mode=draw(st.sampled_from(["exclusive", "shared"])),
                task=draw(st.one_of(st.none(), NAMES)),
                epoch=draw(st.one_of(st.none(), st.integers(0, 2**40))),
                reason=draw(REASONS),
                created=draw(TIMES),
                expires=draw(st.one_of(st.none(), TIMES)),
            )
        )
    return out


@given(reservations())
def test_round_trip(table: list[Reservation]) -> None:
    text = render_reservations(table, 1_760_000_000.0)
    assert parse_reservations(text, "reservations.md") == table


@given(reservations())
def test_text_cannot_forge_blocks_or_fields(table: list[Reservation]) -> None:
    text = render_reservations(table, 1_760_000_000.0)
    doc = parse_doc(text, "reservations.md")
    assert [s.heading for s in doc.sections] == [f"Reservation: {r.id}" for r in table]
    for section in doc.sections:
        assert set(section.fields()) == {
            "agent",
            "patterns",
            "mode",
            "task",
            "epoch",
            "reason",
            "created",
            "expires",
        }


def test_seed_style_and_grep() -> None:
    r = Reservation(
        "res-1",
        "backend-dev",
        ["src/api/**", "*.md"],
        task="t1",
        epoch=2,
        reason="API",
        created=1_760_000_000.0,
    )
    text = render_reservations([r], 1_760_000_000.0)
    assert "## Reservation: res-1\n" in text
    assert "**Patterns**: `src/api/**`, `*.md`\n" in text
    assert "**Expires**: -\n" in text
    assert "**Mode**: exclusive\n" in text


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (("**Mode**: exclusive", "**Mode**: sometimes"), "Mode"),
        (("**Patterns**: `a`", "**Patterns**: `../a`"), "outside"),
        (("**Patterns**: `a`", "**Patterns**: a"), "Patterns"),
        (("**Agent**: x", "**Agent**: bad name"), "agent"),
        (("**Created**: 2025", "**Created**: yesterday"), "Created"),
        (("**Epoch**: -", "**Epoch**: many"), "Epoch"),
    ],
)
def test_hand_edits_are_reported_with_the_line(edit: tuple[str, str], reason: str) -> None:
    r = Reservation("r1", "x", ["a"], created=1_760_000_000.0)
    text = render_reservations([r], 1_760_000_000.0)
    old, new = edit
    assert old in text
    bad = text.replace(old, new, 1)
    if old.startswith("**Created**"):
        bad = text.replace(text.split("**Created**: ")[1].split("\n")[0], "yesterday")
    with pytest.raises(CorruptData, match=reason):
        parse_reservations(bad, "reservations.md")


def test_duplicate_ids_are_corrupt() -> None:
    r = Reservation("r1", "x", ["a"], created=1.0)
    text = render_reservations([r, r], 1.0)
    with pytest.raises(CorruptData, match="twice"):
        parse_reservations(text, "reservations.md")
