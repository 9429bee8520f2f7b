"""Showing text supplied by agents to people (SPEC section 16): terminal-safe, unambiguous.

A title, an error message, a progress note, an event value or anything else read from the store
may hold bytes a terminal acts on: ``ESC ]0;... BEL`` retitles the window, ``ESC ]52;c;...``
writes the clipboard, ``ESC [2J`` clears the screen, a lone ``\\r`` or a newline overwrites or
forges rows, and bidi controls reorder what is shown ("Trojan Source"). Every character of these
classes is **escaped** (never dropped, so nothing is hidden):

- C0 controls U+0000-U+001F (``\\n``, ``\\r`` and ``\\t`` by name, the others ``\\xHH``; ESC is
  ``\\x1b``), DEL U+007F and C1 controls U+0080-U+009F (``\\x9b`` is an 8-bit CSI);
- Unicode format characters (category Cf): bidi embeddings, overrides and isolates
  U+202A-U+202E and U+2066-U+2069, the marks U+200E/U+200F/U+061C, zero-width characters
  U+200B-U+200D, U+2060-U+2064, the byte-order mark U+FEFF, the soft hyphen U+00AD, the tag
  characters U+E0001 and U+E0020-U+E007F, and the rest of the category (as ``\\uHHHH`` or
  ``\\UHHHHHHHH``);
- the line and paragraph separators U+2028/U+2029 and lone surrogates U+D800-U+DFFF (which no
  terminal can be sent).

The forms are the ones the markdown files use (Python's): ``\\x1b``, ``\\n``, ``\\u202e``,
``\\U000e0041``. A backslash of the text itself is shown doubled **only** where it would
otherwise read as the start of such an escape (before ``\\``, ``n``, ``r``, ``t``, ``xHH``,
``uHHHH``, ``UHHHHHHHH`` or an escaped character), so ``C:\\Temp`` and ``\\d+`` read as they are
while a title that spells out ``\\x1b`` can never look like one holding ESC: :func:`shown` is
one-to-one (:func:`unshown` inverts it) and two different texts are never shown the same.

Three functions, for three places:

- :func:`shown`: a single-line field (a table cell, a ``key: value`` line, a value inside a
  sentence); line breaks are escaped too, so no value can forge a row.
- :func:`shown_block`: multi-line free text (a task's markdown, a description): line breaks stay,
  every other character above is escaped as in :func:`shown`.
- :func:`scrub`: the last pass over a whole output (``emit``, errors, warnings): escapes the
  classes above except the newline, and leaves backslashes alone, so text already passed through
  :func:`shown` is unchanged (no double escaping).

:func:`json_safe` makes JSON text (``json.dumps(..., ensure_ascii=False)``, which escapes only
C0, ``"`` and ``\\``) terminal-safe while keeping it the same JSON: the remaining characters
above become JSON ``\\uHHHH`` escapes (surrogate pairs above U+FFFF).

Pure and cheap: the patterns are compiled on first use (``re`` caches them), not at import, so
commands that never show agent text pay nothing.
"""

from __future__ import annotations

import re

#: Every character that is escaped (see the module docstring). Cf as of Unicode 15 plus the
#: line/paragraph separators, C0/DEL/C1 and surrogates; tests/test_security_terminal.py checks it
#: against ``unicodedata`` of the running Python.
UNSAFE_CLASS = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = f"[{UNSAFE_CLASS}]"
#: What follows a backslash that is shown doubled: what would otherwise read as an escape.
_AFTER_BACKSLASH = (
    rf"(?=[\\nrt{UNSAFE_CLASS}]|x[0-9a-fA-F]{{2}}|u[0-9a-fA-F]{{4}}|U[0-9a-fA-F]{{8}})"
)
_SHOWN = rf"{_UNSAFE}|\\{_AFTER_BACKSLASH}"
#: The same but the newline (a whole output's own line breaks stay).
_SCRUB = "[\x00-\x09\x0b-\x1f" + UNSAFE_CLASS[len("\x00-\x1f") :] + "]"
_UNSHOWN = r"\\(\\|n|r|t|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNNAMED = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def escape_char(ch: str) -> str:
    """The escape of one character: ``\\n``, ``\\x1b``, ``\\u202e``, ``\\U000e0041``."""
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _escape(m: re.Match[str]) -> str:
    return escape_char(m.group(0))


def shown(value: str) -> str:
    """``value`` for one line of a terminal: every control, format and separator character
    escaped, line breaks included (SPEC section 16); one-to-one (see :func:`unshown`)."""
    if value.isprintable() and "\\" not in value:
        # The usual case, without compiling the pattern (~1 ms): isprintable is False for
        # every character of Cc, Cf, Zl, Zp and Cs (and for other spaces than " ").
        return value
    return re.sub(_SHOWN, _escape, value)


def shown_block(value: str) -> str:
    """Multi-line ``value`` for a terminal: its line breaks kept, each line as :func:`shown`."""
    if "\n" not in value:
        return shown(value)
    return "\n".join(shown(line) for line in value.split("\n"))


def scrub(text: str) -> str:
    """A whole output made terminal-safe: the characters :func:`shown` escapes, except the
    newline, escaped; backslashes untouched (idempotent on :func:`shown` output)."""
    if text.replace("\n", " ").isprintable():
        return text
    return re.sub(_SCRUB, _escape, text)


def unshown(value: str) -> str:
    """The text :func:`shown` (or :func:`shown_block`) was given: ``unshown(shown(s)) == s``."""
    if "\\" not in value:
        return value
    return re.sub(_UNSHOWN, _unescape, value)


def _unescape(m: re.Match[str]) -> str:
    s = m.group(1)
    if len(s) == 1:
        return _UNNAMED[s]
    return chr(int(s[1:], 16))


def _json_escape(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_safe(dumped: str) -> str:
    """JSON text with every character :func:`shown` escapes written as a JSON ``\\u`` escape:
    the same JSON to a parser, and nothing in it a terminal acts on."""
    if dumped.replace("\n", " ").isprintable():  # (indented JSON has line breaks)
        return dumped
    # Raw newlines in JSON text are indentation (json.dumps escapes every C0 inside strings).
    return re.sub(_SCRUB, _json_escape, dumped)


def is_safe(text: str) -> bool:
    """True if ``text`` holds none of the characters :func:`shown` escapes but the newline."""
    return text.replace("\n", " ").isprintable() or re.search(_SCRUB, text) is None
