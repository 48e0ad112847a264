"""Cells of the CSV files SWAN writes and reads back: none is a formula to a spreadsheet."""

from __future__ import annotations

# OWASP CSV injection: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Texts starting with the escape quote get one too, so that import can always take it off again.
_ESCAPED_STARTS = (*FORMULA_STARTS, "'")


def csv_safe(text: str) -> str:
    """A text as exported: a leading `'` before a would-be formula (or a leading quote)."""
    return f"'{text}" if text.startswith(_ESCAPED_STARTS) else text


def csv_unsafe(text: str) -> str:
    """The inverse of csv_safe on import: export → import keeps every name exactly."""
    if text.startswith("'") and text[1:].startswith(_ESCAPED_STARTS):
        return text[1:]
    return text
