"""Plain-text tables and failure summaries for terminals: shared by every room that prints figures, so that
printing a table never drags in the fleet (or anything else) with it."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(rows: Sequence[Sequence[str]], numbers_right: bool = True) -> str:
    """Rows (the first is the header) in aligned columns, a rule under the header.

    ``numbers_right`` right-aligns every column but the first, as for tables of figures.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(w) if j and numbers_right else cell.ljust(w)
                  for j, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


MESSAGE_CHARS = 1000  # the most of one foreign message (an agent's error, a tool's output) shown or kept


def clip(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (an agent may send a megabyte)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def failure_summary(causes: Sequence[tuple[str, int]], limit: int = 5) -> str:
    """'N failed:' and the ``limit`` most frequent causes, one per line, each cut to one screen line."""
    total = sum(n for _, n in causes)
    lines = [f"{total} failed; causes, most frequent first:"]
    for cause, n in causes[:limit]:
        first = cause.strip().splitlines()[0] if cause.strip() else "no error recorded"
        lines.append(f"  {n:>6} x {first[:200]}")
    if len(causes) > limit:
        lines.append(f"  ... and {len(causes) - limit} other cause(s)")
    return "\n".join(lines)
