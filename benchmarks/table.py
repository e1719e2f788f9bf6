"""Printing a benchmark's figures as a plain aligned table."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(header: Sequence[object], rows: Sequence[Sequence[object]]) -> None:
    """``header`` and ``rows`` as left-aligned columns two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
