"""Rendering of tables: rich boxes on a terminal, plain text that never splits a token in a pipe.

A CI log or ``| tee`` gets at most ``COLUMNS`` (default 80) characters per line: columns aligned
when they fit, else one ``header: value`` line per cell under each row's first cell. Nothing is
cut in the middle (``1×160×107`` stays whole; only free text such as titles wraps, at spaces).
"""

from __future__ import annotations

import os
import textwrap

from rich.console import Console
from rich.table import Table
from rich.text import Text


def plain_width(console: Console | None = None) -> int:
    """``COLUMNS`` when set (a pipe has no terminal width), else 80."""
    try:
        return max(int(os.environ.get("COLUMNS", "")), 20)
    except ValueError:
        return 80


def _plain(value: object) -> str:
    if isinstance(value, Text):
        return value.plain
    text = str(value) if value is not None else ""
    try:
        return Text.from_markup(text).plain
    except Exception:  # not markup after all ("[1, 3]")
        return text


def table_lines(table: Table, width: int = 80) -> list[str]:
    """The table as plain lines no longer than ``width`` (unless one token alone is longer)."""
    headers = [_plain(c.header) for c in table.columns]
    columns = [[_plain(v) for v in c.cells] for c in table.columns]
    rows = list(zip(*columns, strict=True)) if columns else []
    lines: list[str] = []

    def wrap(text: str) -> None:
        for paragraph in text.splitlines() or [""]:
            lines.extend(
                textwrap.wrap(paragraph, width, break_long_words=False, break_on_hyphens=False) or [""]
            )

    if table.title:
        wrap(_plain(table.title))
    shown = headers if table.show_header else ["" for _ in headers]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(shown)]
    right = [c.justify == "right" for c in table.columns]
    if sum(widths) + 2 * (len(widths) - 1) <= width:

        def fmt(cells) -> str:
            parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
            return "  ".join(parts).rstrip()

        if table.show_header:
            lines.append(fmt(headers))
            lines.append("  ".join("-" * w for w in widths))
        lines.extend(fmt(r) for r in rows)
    else:
        label = max((len(h) for h in headers[1:]), default=0)
        indent = " " * (label + 4)
        for r in rows:
            lines.append(r[0] if r else "")
            for h, v in zip(headers[1:], r[1:], strict=True):
                first = f"  {h.ljust(label)}  "
                lines.extend(
                    textwrap.wrap(
                        v,
                        width,
                        initial_indent=first,
                        subsequent_indent=indent,
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                    or [first.rstrip()]
                )
    if table.caption:
        wrap(_plain(table.caption))
    return lines


def print_table(console: Console, table: Table) -> None:
    """Boxes on a terminal; plain, never-split lines in a pipe or file."""
    if console.is_terminal:
        console.print(table)
        return
    width = plain_width(console)
    for line in table_lines(table, width):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
