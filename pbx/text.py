"""The rule on text every entry point applies the same way: no control characters."""

from __future__ import annotations

import re

# CR and LF would inject AMI headers; NUL is refused by PostgreSQL; none belongs in a name.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def has_control_character(text: str) -> bool:
    """True when `text` holds an ASCII control character (tab, CR, LF and DEL included)."""
    return _CONTROL_CHARACTER.search(text) is not None
