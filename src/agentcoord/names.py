"""Validation of user-supplied names and ids (SPEC section 3).

Every name that becomes part of a file name or a Redis key goes through :func:`check_name` before
any file is touched, so ``..``, path separators and control characters can never reach the store.
"""

from __future__ import annotations

import re

from .errors import InvalidName

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a valid name, else raise :class:`InvalidName` (exit 2)."""
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        if isinstance(value, str) and len(value) > 64:
            shown = repr(value[:40] + "...")
        raise InvalidName(
            f"invalid {what} {shown}: use 1-64 characters from A-Z a-z 0-9 . _ - "
            "starting with a letter or digit",
            field=what,
        )
    return value
