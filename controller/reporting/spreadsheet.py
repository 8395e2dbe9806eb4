"""CSV cells that stay data: text a spreadsheet would run as a formula is written behind a quote.

Device keys, agent names and agents' failure messages end up in CSV files that people open in spreadsheets;
``=cmd|' /C calc'!A0`` in one of them would run there. Every CSV hwnas writes for people passes its cells
through ``spreadsheet_safe``, and what hwnas reads back takes the quote off (``from_spreadsheet_safe``).
"""

from __future__ import annotations

from typing import Any

# A text cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: one that would start a formula gets a leading ``'``."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def from_spreadsheet_safe(text: str) -> str:
    """The text ``spreadsheet_safe`` wrote, as it was."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
