"""Escaping and the tolerant document parser shared by every file format.

Escaping guarantees that text supplied by users or agents can never forge a field, a heading, a
section, a fence or an event: every line break and control character inside a value is written as a
backslash escape, and a line whose first character could start markdown structure gets a leading
backslash. The parser therefore only ever sees structure that the renderer wrote (or a person
typed).
"""

from __future__ import annotations

import math
import re

from ....core.clock import fmt_number
from ....core.text import UNSAFE_CLASS, json_safe
from ....core.validate import normalize_block
from ....errors import CorruptData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Re-exported: every format writes numbers and keeps free text this way.
__all__ = ["fmt_number", "normalize_block"]

# Characters that split a line for *some* reader (Python's str.splitlines, editors, markdown) plus
# every other character a terminal acts on or that disguises text (C0, DEL, C1, bidi and other
# format characters: :data:`agentcoord.core.text.UNSAFE_CLASS`), so ``cat``, ``less -r`` and
# ``git diff`` of a record are as safe as coord's own output (SPEC 16). Tab is escaped too so
# that values survive tools that expand it.
_NEEDS_ESCAPE = re.compile(r"[\\\x00-\x1f\x7f\x85\u2028\u2029]|^\s|\s$|^[#`~*\-_=<>|+\[]|```")
_CTRL = re.compile(r"[\\\x00-\x1f\x7f\x85\u2028\u2029]")
# The whole class takes ~5 ms to compile (its astral ranges): compiled on first use (``re``'s
# cache), only for a value that holds a character ``str.isprintable`` refuses.
_UNSAFE = rf"[\\{UNSAFE_CLASS}]"
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_STRUCTURAL = frozenset("#`~*-_=<>|+[")  # "<" and "=": a line must never look like a conflict
# Compiled on first use (``re``'s own cache): only values holding a backslash or a run of three
# backticks need them, and every compile at import is start-up time for every CLI call.
_UNESCAPE = r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)"


def _ctrl(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    return _hex(ch)


_FENCE_RUN = r"`(?=``)"  # a backtick that starts a run of three


def escape_line(value: str, *, backticks: bool = False) -> str:
    """Encode ``value`` so that it stays on one line and cannot start markdown structure.

    No run of three backticks survives (the seed's ``sed -n '/```json/,/```/p'`` recipe matches
    them anywhere in a line); with ``backticks`` every backtick is escaped, for values written
    inside a backtick code span."""
    if backticks and "`" in value:
        out = _escape_chars(value).replace("`", "\\x60")
    elif _NEEDS_ESCAPE.search(value) is None and value.isprintable():
        return value
    else:
        out = re.sub(_FENCE_RUN, "\\\\x60", _escape_chars(value))
    if out and out[0] in _STRUCTURAL:
        out = "\\" + out
    if out[:1].isspace():
        out = _hex(out[0]) + out[1:]
    if len(out) > 1 and out[-1].isspace():
        out = out[:-1] + _hex(out[-1])
    return out


def _escape_chars(value: str) -> str:
    if value.isprintable():  # only a backslash can need it
        return _CTRL.sub(_ctrl, value)
    return re.sub(_UNSAFE, _ctrl, value)


def _hex(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unescape(m: re.Match[str]) -> str:
    s = m.group(1)
    if len(s) > 1:  # \xNN, \uNNNN, \UNNNNNNNN
        try:
            code = int(s[1:], 16)
            if 0xD800 <= code <= 0xDFFF:  # a lone surrogate stands for no text: keep it visible
                return m.group(0)
            return chr(code)
        except ValueError:  # out of range: a person's typo, keep it visible
            return m.group(0)
    return {"n": "\n", "r": "\r", "t": "\t"}.get(s, s)


def unescape_line(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(_UNESCAPE, _unescape, value, flags=re.DOTALL)


def escape_block(text: str) -> str:
    """Encode multi-line free text: each line escaped, so no line can start a heading or fence."""
    return "\n".join(escape_line(line) for line in text.split("\n"))


def unescape_block(lines: list[str]) -> str:
    return "\n".join(unescape_line(line) for line in lines)


def json_block(data: object) -> str:
    """A fenced json block. Backticks are written as ``\\u0060`` so that the seed's
    ``sed -n '/```json/,/```/p'`` recipe cannot be cut short by a value."""
    import json

    # Backticks, C1, bidi and other format characters and U+2028/2029 only occur inside JSON
    # strings, where the \u escape is equivalent; raw, they would end the sed range early
    # (backtick), split the line for some readers or act on a terminal showing the file.
    body = json_safe(json.dumps(data, indent=2, ensure_ascii=False)).replace("`", "\\u0060")
    return f"```json\n{body}\n```"


# --------------------------------------------------------------------------- parsing ------------

# Linear on any input: no lazy group followed by optional whitespace (values are rstripped in
# code), so a 100 KB hand-edited line parses in microseconds, not seconds.
_FIELD = re.compile(r"\s*(?:[-*+]\s+)?\*\*([^*\n]+?)\*\*\s*:\s?(.*)")
_FENCE = re.compile(r"\s{0,3}(`{3,}|~{3,})")
_CONFLICT = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")
_CONFLICT_LINE = re.compile(r"(<{7}|>{7}|\|{7})(?:\s.*)?$|={7}\s*$")


class Section:
    """A ``## Heading`` and the raw lines under it (line numbers kept for error messages)."""

    __slots__ = ("heading", "line", "lines")

    def __init__(self, heading: str, line: int) -> None:
        self.heading = heading
        self.line = line
        self.lines: list[tuple[int, str]] = []

    def body(self) -> list[str]:
        """The section's lines without surrounding blank lines."""
        texts = [t for _, t in self.lines]
        start, end = 0, len(texts)
        while start < end and not texts[start].strip():
            start += 1
        while end > start and not texts[end - 1].strip():
            end -= 1
        return texts[start:end]

    def fields(self) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        for no, text in self.lines:
            m = _FIELD.match(text)
            if m is not None:
                out.setdefault(m.group(1).strip().lower(), (m.group(2).rstrip(), no))
        return out

    def fenced(self, lang: str | None = None) -> tuple[int, list[str]] | None:
        """The first fenced block (of language ``lang`` if given): (its opening line, lines)."""
        inside: list[str] | None = None
        start = 0
        fence = ""
        for no, text in self.lines:
            if inside is None:
                m = _FENCE.match(text)
                if m is not None:
                    info = text[m.end() :].strip().lower()
                    if lang is None or info == lang:
                        inside, start, fence = [], no, m.group(1)
            elif text.strip().startswith(fence[0] * len(fence)) and not text.strip().strip(
                fence[0]
            ):
                return start, inside
            else:
                inside.append(text)
        if inside is not None:
            return start, inside  # unterminated: the caller decides whether that is corrupt
        return None


class Doc:
    """A parsed coordination file: its ``# Title``, header fields and ``##`` sections."""

    __slots__ = ("fields", "path", "sections", "title", "title_line")

    def __init__(self, path: str) -> None:
        self.path = path
        self.title: str | None = None
        self.title_line = 0
        self.fields: dict[str, tuple[str, int]] = {}
        self.sections: list[Section] = []

    def corrupt(self, line: int, reason: str) -> CorruptData:
        return CorruptData(self.path, line, reason)

    def section(self, heading: str) -> Section | None:
        want = heading.lower()
        for s in self.sections:
            if s.heading.lower() == want:
                return s
        return None

    def field(self, name: str, *, required: bool = False) -> tuple[str, int] | None:
        got = self.fields.get(name.lower())
        if got is None and required:
            raise self.corrupt(max(self.title_line, 1), f"missing field **{name}**")
        return got


def parse_doc(text: str, path: str) -> Doc:
    """Split a file into title, header fields and sections. Only ``\\n`` separates lines, so
    escaped values can never be split by an exotic line break.

    Tolerated: a UTF-8 byte order mark and CRLF line ends (Windows editors). Refused as
    :class:`CorruptData` with the line, because they make the record ambiguous: git conflict
    markers (a merge left both versions: which status, whose result?) and a header field given
    twice."""
    doc = Doc(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r\n" in text:  # a file saved by a Windows editor; escaped values never hold a raw CR
        text = text.replace("\r\n", "\n")
    current: Section | None = None
    fence = ""
    for no, line in enumerate(text.split("\n"), start=1):
        if line.startswith(_CONFLICT) and _CONFLICT_LINE.match(line):
            raise doc.corrupt(
                no, "a git conflict marker: resolve the merge (keep one version) first"
            )
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
            if current is not None:
                current.lines.append((no, line))
            continue
        m = _FENCE.match(line)
        if m is not None:
            fence = m.group(1)
            if current is not None:
                current.lines.append((no, line))
            continue
        if line.startswith("## "):
            current = Section(line[3:].strip(), no)
            doc.sections.append(current)
        elif line.startswith("# ") and doc.title is None and current is None:
            doc.title = line[2:].strip()
            doc.title_line = no
        elif current is None:
            fm = _FIELD.match(line)
            if fm is not None:
                name = fm.group(1).strip().lower()
                first = doc.fields.get(name)
                if first is not None:
                    raise doc.corrupt(
                        no, f"**{fm.group(1).strip()}** is given twice (first on line {first[1]})"
                    )
                doc.fields[name] = (fm.group(2).rstrip(), no)
        else:
            current.lines.append((no, line))
    return doc


def parse_int(doc: Doc, value: str, line: int, name: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise doc.corrupt(line, f"**{name}** is not a whole number: {value!r}") from None


def finite(text: str) -> float:
    """``float(text)`` for a number a record may hold: ValueError for infinities and NaN (which
    ``1e999`` becomes), so a hand-edited file can never feed one to the domain."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def loads_json(text: str) -> Any:
    """JSON as a record holds it: strict, with no NaN, Infinity or overflowing numbers (JSON has
    none of them and ``jq`` refuses them). Raises ``ValueError`` (a ``JSONDecodeError`` with
    ``lineno`` for a syntax error) or ``RecursionError`` for absurd nesting."""
    import json

    data = json.loads(text, parse_constant=_no_constant, parse_float=finite)
    if "\\u" in text and _has_surrogate(data):
        raise ValueError("a \\uD800-\\uDFFF escape that is not part of a pair is not text")
    return data


def _has_surrogate(value: Any) -> bool:
    """Whether decoded JSON holds a lone surrogate (text that cannot be stored as UTF-8)."""
    import json

    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
