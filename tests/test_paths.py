"""Repository patterns of file reservations (core/paths.py, SPEC section 13)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcoord.core.paths import matches, normalize, normalize_all, overlaps
from agentcoord.errors import InvalidInput


def reference(pattern: str) -> re.Pattern[str]:
    """An independent regex for a pattern: gitignore's reading of ``*``, ``?``, classes, ``**``,
    slashless globs (any depth), and everything below what a pattern matches."""
    parts = pattern.split("/")
    if len(parts) == 1 and parts[0] != "**" and any(c in parts[0] for c in "*?["):
        parts = ["**", *parts]
    out = ""
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "**":
            out += "(?:.*)" if last else "(?:[^/]+/)*"
            continue
        body = ""
        j = 0
        while j < len(seg):
            ch = seg[j]
            if ch == "*":
                body += "[^/]*"
            elif ch == "?":
                body += "[^/]"
            elif ch == "[":
                end = seg.find("]", j + 2 if j + 1 < len(seg) and seg[j + 1] in "!^" else j + 1)
                k = j + 1
                if k < len(seg) and seg[k] in "!^":
                    k += 1
                end = seg.find("]", k + 1)
                if end < 0:
                    body += re.escape("[")
                else:
                    inner = seg[j + 1 : end]
                    neg = inner[:1] in ("!", "^")
                    inner = inner[1:] if neg else inner
                    chars = "".join("\\" + c if c in "\\]^[-" else c for c in inner)
                    chars = re.sub(r"(\w)\\-(\w)", r"\1-\2", chars)
                    body += f"[{'^' if neg else ''}{chars}{'/' if neg else ''}]"
                    j = end
            else:
                body += re.escape(ch)
            j += 1
        out += body + ("" if last else "/")
    # "a/**" matches "a" too (zero segments)
    out = out.replace("/(?:.*)", "(?:/.*)?")
    last = parts[-1]
    below = last == "*"
    return re.compile(out + ("(?:/.*)?" if below else ""))  # and what is below a match


SEGMENT = st.sampled_from(["a", "b", "x.py", "a.md", "src", "docs", "ab", "ba", "b.md"])
PATHS = st.lists(SEGMENT, min_size=1, max_size=4).map("/".join)
GLOB_SEGMENT = st.one_of(
    SEGMENT,
    st.sampled_from(["*", "*.md", "*.py", "a*", "?", "?b", "[ab]", "[!a]*", "**", "[a-c]?"]),
)
PATTERNS = st.lists(GLOB_SEGMENT, min_size=1, max_size=4).map(lambda s: normalize("/".join(s)))


def test_examples() -> None:
    assert overlaps("*.md", "docs/a.md")
    assert overlaps("src/**", "src/api/x.py")
    assert overlaps("src/**", "src")
    assert overlaps("a/**/b", "a/b")
    assert not overlaps("x.py", "y.py")
    assert not overlaps("a/*.py", "a/b/c.py")
    assert not overlaps("docs/[a-c].md", "docs/d.md")
    assert matches("*.md", "docs/README.md")  # a slashless glob: any depth
    assert not matches("README.md", "docs/README.md")  # a plain name: the one at the top
    assert not overlaps("Makefile", "sub/**")
    assert overlaps("src/*", "src/a/x.py")  # below what it matches (gitignore)
    assert matches(normalize("newpkg/"), "newpkg/x.py")
    assert not matches("newpkg", "newpkg/x.py")  # a plain name is a file
    assert not matches("docs/README.md", "README.md")
    assert matches("src/**", "src/x.py")
    assert matches("s*c/[!b]?.py", "src/ax.py")
    assert matches("src/*", "src/a/b")
    assert not overlaps("x.py", "y.py/x.py")
    assert not overlaps("*.md", "tests/*.py")  # globs naming files cover nothing below
    assert not matches("tests/*.py", "tests/a.py/b")


def test_normalize() -> None:
    assert normalize("./a//b/") == "a/b/**"
    assert normalize("../x", cwd="src") == "x"
    assert normalize("x", cwd="src/api") == "src/api/x"
    assert normalize("/repo/src/a.py", root="/repo") == "src/a.py"
    assert normalize("/repo", root="/repo") == "**"
    assert normalize("a/**/**/b") == "a/**/b"
    assert normalize_all(["a", "./a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("../x", "outside"),
        ("a/../../x", "outside"),
        ("/etc/passwd", "outside"),
        ("/repo/../etc", "outside"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x1b[31m", "control"),
        ("a\\b", "backslash"),
        ("*/../x", "glob"),
        (" a", "white space"),
        ("x" * 2000, "longer"),
    ],
)
def test_normalize_refuses(value: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as info:
        normalize(value, root="/repo")
    assert info.value.exit_code == 2


def test_absolute_needs_root() -> None:
    with pytest.raises(InvalidInput):
        normalize("/x/y")


@given(PATTERNS, PATTERNS)
def test_overlap_is_symmetric(a: str, b: str) -> None:
    assert overlaps(a, b) == overlaps(b, a)


@given(PATTERNS)
def test_overlap_is_reflexive(a: str) -> None:
    assert overlaps(a, a)


@given(PATTERNS, PATTERNS, PATHS)
def test_a_common_path_means_overlap(a: str, b: str, path: str) -> None:
    if reference(a).fullmatch(path) and reference(b).fullmatch(path):
        assert overlaps(a, b), (a, b, path)


@given(PATTERNS, PATHS)
def test_matches_agrees_with_the_reference(pattern: str, path: str) -> None:
    assert matches(pattern, path) == bool(reference(pattern).fullmatch(path)), (pattern, path)


@given(PATTERNS, PATHS)
def test_a_match_overlaps_the_path(pattern: str, path: str) -> None:
    if matches(pattern, path):
        assert overlaps(pattern, path)
