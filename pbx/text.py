"""The rule on text every entry point applies the same way: no control characters."""

from __future__ import annotations

import re

# CR and LF would inject AMI headers; NUL is refused by PostgreSQL; none belongs in a name.
# Unicode's control characters (Cc): C0, DEL and C1 (U+0085 is a line break, U+009B a terminal's
# escape).
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_character(text: str) -> bool:
    """True when `text` holds a control character (tab, CR, LF, DEL and U+0080 to U+009F included)."""
    return _CONTROL_CHARACTER.search(text) is not None
