"""Showing a store URL without its credentials: the one masker behind every message, status
line, dashboard header, doctor finding, migration report, timer log line and MCP reply that
names a Redis URL (SPEC section 16).

:func:`mask_url` does not trust a URL parser to find the password: a password with an
unencoded ``#``, ``/`` or ``?`` makes ``urlsplit`` end the user information early and put the
rest of the password in the host, the path or the fragment, and an unknown or wrongly cased
scheme (``REDIS://``, ``redis:/``, ``valkey://``) is not a URL the store accepts at all, yet it
is echoed in the error that says so. The rules, whatever the scheme or its case:

- everything between ``scheme://`` (or the ``:`` after a scheme-like prefix) and the **last**
  ``@`` of the URL is user information, shown as ``***`` (``:***`` for an empty user name:
  ``redis://:***@host``);
- in the query, the value of every parameter named like a secret (a name containing ``pass``,
  ``secret``, ``token``, ``auth``, ``cred`` or ``key``, the words of
  :func:`agentcoord.workspace.has_credential`) is ``***``, and so is everything after it (an
  unencoded ``&`` or ``#`` may be part of that value);
- a secret parameter before the last ``@`` (an ``@`` in its value), or a host or path that is
  not made of the characters a host or path has, means the URL was not understood: only
  ``scheme://***`` is shown, never more. Text with no scheme at all is shown only when it
  looks like a plain path, else as ``***``.

Pure string work (the core layer): no I/O.
"""

from __future__ import annotations

import re

#: Query parameter names containing one of these (case-insensitive) hold a credential; the same
#: words (``agentcoord.workspace.has_credential`` uses this module too).
SECRET_WORDS = ("pass", "secret", "token", "auth", "cred", "key")
MASK = "***"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}):")
_HOST = re.compile(r"[A-Za-z0-9._~%:\[\]-]*")
_PATH = re.compile(r"[A-Za-z0-9._~%/+,=-]*")
_PARAM = re.compile(r"[A-Za-z0-9._~%+-]*(=[A-Za-z0-9._~%+,/:-]*)?")
_PARAM_START = re.compile(r"[?&]([^?&=#]*)=")
_PLAIN = re.compile(r"[A-Za-z0-9._~/+-]*")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter called ``name`` (percent-encoded or not) holds a credential."""
    from urllib.parse import unquote_plus

    lowered = unquote_plus(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_url(url: str) -> str:
    """``url`` as it may be shown to anyone: see the module docstring."""
    found = _SCHEME.match(url)
    if found is None:
        return url if _PLAIN.fullmatch(url) else MASK
    scheme = found.group(1)
    unparsable = f"{scheme}://{MASK}"
    rest = url[found.end() :]
    slashes = rest[: len(rest) - len(rest.lstrip("/"))]
    rest = rest[len(slashes) :]
    head = f"{scheme}:{slashes}"
    userinfo, at, rest = rest.rpartition("@")
    if at and any(is_secret_name(m.group(1)) for m in _PARAM_START.finditer(userinfo)):
        return unparsable  # an "@" in a secret parameter's value, or a password that spells one
    if at:
        # Not even a user name is kept: where the user ends and the password starts is a guess
        # (``redis://pw@host``, ``redis://a:b:c@host``). Only an empty user says nothing.
        head += f":{MASK}@" if userinfo.startswith(":") else f"{MASK}@"
    cut = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            cut = min(cut, index)
    host, rest = rest[:cut], rest[cut:]
    if not _HOST.fullmatch(host):
        return unparsable
    path, qmark, query = rest.partition("?")
    path, hash_, fragment = path.partition("#")
    if not _PATH.fullmatch(path):
        return unparsable
    out = head + host + path
    if qmark:
        shown = []
        for part in query.split("&"):
            name, _, _value = part.partition("=")
            if is_secret_name(name):
                # Everything after may be the rest of this value (an unencoded & or #).
                shown.append(f"{name}={MASK}" if _PARAM.fullmatch(name) else MASK)
                return out + "?" + "&".join(shown)
            if not _PARAM.fullmatch(part):
                shown.append(MASK)
                continue
            shown.append(part)
        out += "?" + "&".join(shown)
    if hash_:
        out += "#" + (fragment if _PATH.fullmatch(fragment) else MASK)
    return out


def credentials_in(url: str) -> list[str]:
    """The pieces of ``url`` that may be secret, raw and percent-decoded, longest first: the
    user information (everything between the scheme and the last ``@``, and its part after the
    first ``:``) and the value of every parameter named like a secret wherever a ``?`` or ``&``
    starts one (up to the next ``&``, and up to the end). For scrubbing a third-party error
    message that may quote them (:func:`scrub`); too much is fine, too little is not."""
    from urllib.parse import unquote, unquote_plus

    found = _SCHEME.match(url)
    rest = (url[found.end() :] if found is not None else url).lstrip("/")
    pieces: list[str] = []
    userinfo, at, _tail = rest.rpartition("@")
    if at:
        pieces += [userinfo, userinfo.partition(":")[2]]
    for param in _PARAM_START.finditer(url):
        if is_secret_name(param.group(1)):
            value = url[param.end() :]
            pieces += [value, value.split("&")[0]]
    # Where the secret really ends is unknown (an unencoded delimiter may be part of it): every
    # prefix that ends at a delimiter, and every run between delimiters (a port, a path).
    for piece in list(pieces):
        pieces += [piece[: m.start()] for m in re.finditer(r"[&#@/?]", piece)]
        pieces += [s for s in re.split(r"[&#@/?]", piece) if len(s) >= 3]
    decoded = [unquote(p) for p in pieces] + [unquote_plus(p) for p in pieces]
    return sorted({p for p in pieces + decoded if p}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (an error message from a library handed ``url``) with every credential piece
    of ``url`` (:func:`credentials_in`) replaced by ``***``."""
    for piece in credentials_in(url):
        text = text.replace(piece, MASK)
    return text
