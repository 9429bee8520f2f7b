"""Repository paths and globs of file reservations (SPEC section 13): normalising and overlap.

Pure: no file system access. The interface layer finds the repository root and the current
directory inside it (``git rev-parse --show-toplevel``) and passes them as strings.

A *pattern* is a repo-relative POSIX path that may hold globs, with gitignore's meaning:

- ``*`` any run of characters within one path segment, ``?`` one character, ``[abc]``,
  ``[a-z]``, ``[!a]`` / ``[^a]`` one character of (not of) a class; ``\\`` is refused (use ``/``);
- ``**`` as a whole segment: zero or more segments (``src/**`` is ``src`` and all below it);
  ``**`` inside a segment (``a**b``) is a plain ``*``;
- a glob without ``/`` matches a basename at any depth (``*.md`` is ``docs/a.md`` too); a plain
  name without ``/`` is the one at the top (``Makefile`` is not ``sub/Makefile``);
- a pattern ending in ``*`` also covers everything below what it matches, as gitignore does
  for a directory it matches (``src/*`` covers ``src/a/x.py``); a trailing ``/`` means the
  directory and everything below it (``newpkg/`` is ``newpkg/**``, also before it exists),
  and the interfaces write an existing directory as ``dir/**``
  (:func:`agentcoord.workspace.repo_patterns`). Other patterns name files.

:func:`overlaps` decides whether two patterns can match a common path (exactly for these
globs, and conservatively, answering "overlap", where a character class is involved and an
exact answer would need set arithmetic: a reservation is refused rather than doubly granted).
:func:`matches` decides whether a concrete path (taken literally: its ``*`` is a character) is
matched by a pattern.
"""

from __future__ import annotations

import posixpath
from functools import lru_cache

from ..errors import InvalidInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

#: Longest pattern or path accepted (characters), and most patterns in one call.
MAX_PATTERN = 1024
MAX_PATTERNS = 256
#: Segment token kinds.
_LIT, _ANY, _CLASS, _STAR = 0, 1, 2, 3
_GLOB_CHARS = frozenset("*?[")
#: The segment that matches zero or more segments.
_DEEP = "**"


def _refuse(value: str, reason: str) -> InvalidInput:
    shown = value.encode("unicode_escape").decode("ascii")
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidInput(f"invalid path {shown!r}: {reason}", field="path")


def _check_text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"a path must be text, not {type(value).__name__}", field="path")
    if not value or not value.strip():
        raise InvalidInput("a path must not be empty", field="path")
    if len(value) > MAX_PATTERN:
        raise _refuse(value, f"longer than {MAX_PATTERN} characters")
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029):
            raise _refuse(value, "it holds a control character")
    if "\\" in value:
        raise _refuse(value, "backslashes are not path separators here; use '/'")
    if value != value.strip():
        raise _refuse(value, "it starts or ends with white space")
    return value


def is_glob(segment: str) -> bool:
    """Whether ``segment`` holds a glob character (``*``, ``?``, ``[``)."""
    return any(ch in _GLOB_CHARS for ch in segment)


def normalize(value: str, *, root: str | None = None, cwd: str = "", glob: bool = True) -> str:
    """``value`` as a canonical repo-relative POSIX pattern (or path, with ``glob`` False).

    ``root`` is the repository's absolute root (an absolute ``value`` must lie inside it; without
    ``root`` an absolute value is refused); ``cwd`` the current directory relative to the root
    (``""`` at the root): a relative ``value`` is taken from there. ``.`` and empty segments go,
    ``..`` cancels the segment before it (never a glob segment, never above the root), a
    trailing ``/`` becomes ``/**`` (patterns only: the directory and all below it), runs of
    ``**`` become one; the root itself is ``**`` (``.`` as a path).

    Raises :class:`InvalidInput` (exit 2) for an empty value, control characters, a backslash,
    a value over :data:`MAX_PATTERN` characters, an absolute path outside ``root``, and ``..``
    that escapes the root or follows a glob.
    """
    value = _check_text(value)
    if value.startswith("/"):
        if root is None or not root.startswith("/"):
            raise _refuse(value, "an absolute path needs the repository root to be known")
        top = posixpath.normpath(root)
        rest = posixpath.normpath(value) if not _has_glob_parent(value) else value
        if rest != top and not rest.startswith(top.rstrip("/") + "/"):
            raise _refuse(value, f"it is outside the repository {top}")
        value = rest[len(top) :].lstrip("/")
        base: list[str] = []
    else:
        base = [s for s in cwd.split("/") if s and s != "."]
        if any(s == ".." for s in base):
            raise _refuse(cwd, "the current directory is outside the repository")
    out = list(base)
    for seg in value.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not out:
                raise _refuse(value, "'..' leads outside the repository root")
            if glob and is_glob(out[-1]):
                raise _refuse(value, "'..' after a glob segment is ambiguous")
            out.pop()
            continue
        if glob and seg == _DEEP and out and out[-1] == _DEEP:
            continue
        out.append(seg)
    if glob and value.endswith("/") and out and out[-1] != _DEEP:
        out.append(_DEEP)
    if not out:
        return _DEEP if glob else "."
    return "/".join(out)


def _has_glob_parent(value: str) -> bool:
    """Whether ``..`` follows a glob segment (normpath would fold it away silently)."""
    parts = value.split("/")
    return any(p == ".." and i and is_glob(parts[i - 1]) for i, p in enumerate(parts))


def normalize_all(
    values: Sequence[str], *, root: str | None = None, cwd: str = "", glob: bool = True
) -> list[str]:
    """:func:`normalize` each (at least one, at most :data:`MAX_PATTERNS`), duplicates once,
    in the order given."""
    if isinstance(values, str):
        values = [values]
    if not values:
        raise InvalidInput("give at least one path or glob", field="path")
    if len(values) > MAX_PATTERNS:
        raise InvalidInput(f"at most {MAX_PATTERNS} paths at once, not {len(values)}")
    return list(dict.fromkeys(normalize(v, root=root, cwd=cwd, glob=glob) for v in values))


# -- compiling -----------------------------------------------------------------------------
Token = tuple[int, object]
#: A character class: (negated, inclusive ranges).
Class = tuple[bool, tuple[tuple[str, str], ...]]


@lru_cache(maxsize=4096)
def _segment(seg: str, literal: bool) -> tuple[Token, ...]:
    """The tokens of one segment: literal characters, ``?``, classes, ``*`` (runs of ``*``
    collapse)."""
    if literal:
        return tuple((_LIT, ch) for ch in seg)
    out: list[Token] = []
    i, n = 0, len(seg)
    while i < n:
        ch = seg[i]
        if ch == "*":
            if not out or out[-1][0] != _STAR:
                out.append((_STAR, None))
            i += 1
        elif ch == "?":
            out.append((_ANY, None))
            i += 1
        elif ch == "[":
            parsed = _parse_class(seg, i)
            if parsed is None:
                out.append((_LIT, "["))
                i += 1
            else:
                cls, i = parsed
                out.append((_CLASS, cls))
        else:
            out.append((_LIT, ch))
            i += 1
    return tuple(out)


def _parse_class(seg: str, start: int) -> tuple[Class, int] | None:
    """A ``[...]`` class at ``start``: ((negated, ranges), index after it), or None when it is
    not closed (then ``[`` is a plain character, as fnmatch has it)."""
    i = start + 1
    negated = i < len(seg) and seg[i] in "!^"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    first = True
    while i < len(seg):
        ch = seg[i]
        if ch == "]" and not first:
            return (negated, tuple(ranges)), i + 1
        if i + 2 < len(seg) and seg[i + 1] == "-" and seg[i + 2] != "]":
            ranges.append((ch, seg[i + 2]))
            i += 3
        else:
            ranges.append((ch, ch))
            i += 1
        first = False
    return None


def _compile(pattern: str, *, literal: bool) -> tuple[tuple[Token, ...] | None, ...]:
    """The segments of a pattern (None for ``**``): a glob without ``/`` is ``**/`` it (any
    depth), and a pattern that covers below (:func:`_covers_below`) ends in ``**``. A
    ``literal`` one is a concrete path: every character stands for itself."""
    segs: list[tuple[Token, ...] | None] = []
    parts = [] if pattern in (".", "") else pattern.split("/")
    if not literal and len(parts) == 1 and parts[0] != _DEEP and is_glob(parts[0]):
        segs.append(None)
    for seg in parts:
        if not literal and seg == _DEEP:
            if not segs or segs[-1] is not None:
                segs.append(None)
        else:
            segs.append(_segment(seg, literal))
    if not literal and parts and _covers_below(parts[-1]) and segs[-1] is not None:
        segs.append(None)
    return tuple(segs)


def _covers_below(last: str) -> bool:
    """Whether a pattern ending in segment ``last`` covers what is below what it matches: one
    ending in ``*`` (``src/*`` is all of ``src``, as in gitignore). A plain name is a file
    unless it is an existing directory (the interfaces write those as ``dir/**``), and a glob
    such as ``*.md`` names files: if either covered what is below it, every such pattern would
    overlap every slashless glob (``docs/x.rst`` with ``*.md``, through ``docs/x.rst/a.md``)."""
    return last == "*"


# -- overlap -------------------------------------------------------------------------------
def _chars_meet(a: Token, b: Token) -> bool:
    """Whether two one-character tokens can match the same character (conservative for two
    classes)."""
    if a[0] == _ANY or b[0] == _ANY:
        return True
    if a[0] == _LIT and b[0] == _LIT:
        return a[1] == b[1]
    if a[0] == _LIT:
        return _in_class(str(a[1]), b[1])
    if b[0] == _LIT:
        return _in_class(str(b[1]), a[1])
    negated_a, ranges_a = _cls(a[1])
    negated_b, ranges_b = _cls(b[1])
    if negated_a or negated_b:
        return True  # conservative: some character outside a class nearly always exists
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in ranges_a for lo2, hi2 in ranges_b)


def _cls(value: object) -> Class:
    assert isinstance(value, tuple)
    negated, ranges = value
    return bool(negated), ranges


def _in_class(ch: str, cls: object) -> bool:
    negated, ranges = _cls(cls)
    inside = any(lo <= ch <= hi for lo, hi in ranges)
    return inside != negated


@lru_cache(maxsize=8192)
def _segments_meet(a: tuple[Token, ...], b: tuple[Token, ...]) -> bool:
    """Whether two segment globs match a common non-empty segment."""
    n, m = len(a), len(b)
    # reach[i][j]: a[:i] and b[:j] can match a common prefix string.
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[0][0] = True
    for i in range(n + 1):
        for j in range(m + 1):
            if not reach[i][j]:
                continue
            ta = a[i] if i < n else None
            tb = b[j] if j < m else None
            if ta is not None and ta[0] == _STAR:
                reach[i + 1][j] = True  # the star matches nothing more
                if tb is not None and tb[0] != _STAR:
                    reach[i][j + 1] = True  # the star eats b's character
            if tb is not None and tb[0] == _STAR:
                reach[i][j + 1] = True
                if ta is not None and ta[0] != _STAR:
                    reach[i + 1][j] = True
            if (
                ta is not None
                and tb is not None
                and ta[0] != _STAR
                and tb[0] != _STAR
                and _chars_meet(ta, tb)
            ):
                reach[i + 1][j + 1] = True
    # Segments are never empty; two patterns that meet only on "" are both all stars, and
    # then they meet on any one character too.
    return reach[n][m]


def _meet(a: tuple[tuple[Token, ...] | None, ...], b: tuple[tuple[Token, ...] | None, ...]) -> bool:
    """Whether two compiled patterns match a common path (None segments are ``**``)."""
    n, m = len(a), len(b)
    reach = [[False] * (m + 1) for _ in range(n + 1)]
    reach[0][0] = True
    for i in range(n + 1):
        for j in range(m + 1):
            if not reach[i][j]:
                continue
            sa = a[i] if i < n else 0
            sb = b[j] if j < m else 0
            if sa is None:
                reach[i + 1][j] = True  # ** matches no segment
                if j < m:
                    reach[i][j + 1] = True  # ** eats b's segment (or b's ** eats the same)
            if sb is None:
                reach[i][j + 1] = True
                if i < n:
                    reach[i + 1][j] = True
            if isinstance(sa, tuple) and isinstance(sb, tuple) and _segments_meet(sa, sb):
                reach[i + 1][j + 1] = True
    return reach[n][m]


def overlaps(a: str, b: str) -> bool:
    """Whether patterns ``a`` and ``b`` (canonical, :func:`normalize`) can match a common path
    (``src/**`` overlaps ``src/api/x.py`` and ``src``; ``*.md`` overlaps ``docs/a.md``;
    ``src/*`` overlaps ``src/a/x.py``).
    Symmetric and reflexive; when unsure (two character classes, one negated), True."""
    return _meet(_compile(a, literal=False), _compile(b, literal=False))


def matches(pattern: str, path: str) -> bool:
    """Whether the concrete repo-relative ``path`` (taken literally) is covered by ``pattern``:
    matched by it, or below a path it matches."""
    return _meet(_compile(pattern, literal=False), _compile(path, literal=True))
