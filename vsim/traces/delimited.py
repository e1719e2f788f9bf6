"""Delimited text trace files (CSV and the like) read into columns, with one clear error per file.

The public traces are large (an Azure readings file holds ten million lines), so the files are
parsed with pandas' C reader. When that fails, or leaves a required value empty, the file is
scanned again line by line to find the first bad line and say what is wrong with it: a missing
column, a value that is not a number, or a separator other than the format's.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vsim.errors import Problem, ScenarioError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Column", "read_delimited", "trace_error"]

_CHUNK_ROWS = 1_000_000  # rows parsed at a time: bounds memory when most rows are filtered out
_OTHER_SEPARATORS = {",": "a comma", ";": "a semicolon", "\t": "a tab", "|": "a bar"}


@dataclass(frozen=True)
class Column:
    """One column of a format: its name in the format's documentation and what it holds.

    ``number``: a number on every line; ``optional``: a number or empty (read as NaN);
    ``text``: any text, not empty."""

    name: str
    kind: Literal["number", "optional", "text"] = "number"


def trace_error(message: str, file: Path | str, line: int | None = None,
                hint: str = "") -> ScenarioError:
    """The error for a bad trace file: the scenario layer reports it under the workload's path."""
    return ScenarioError([Problem(message, line=line, hint=hint)], file=str(file))


class _NeedsScan(Exception):
    """The fast reader accepted the file but left a required value empty."""


def read_delimited(path: Path, columns: Sequence[Column], *, sep: str = ",",
                   skip_lines: int = 0, fmt: str, keep: tuple[str, Collection] | None = None
                   ) -> pd.DataFrame:
    """The rows of ``path`` (plain or .gz) as a DataFrame with ``columns``' names.

    ``sep`` separates fields (whitespace around numbers is ignored); the first ``skip_lines``
    lines are a header checked by the caller; ``fmt`` names the format in errors (e.g.
    "Bitbrains GWA-T-12"); ``keep=(column, values)`` keeps only rows whose column is in values.
    """
    import pandas as pd  # only the trace readers need pandas, never the simulation

    names = [c.name for c in columns]
    dtypes = {c.name: ("str" if c.kind == "text" else "float64") for c in columns}
    required = [c.name for c in columns if c.kind != "optional"]
    frames = []
    try:
        reader = pd.read_csv(path, sep=sep, header=None, names=names, index_col=False,
                             skiprows=skip_lines, dtype=dtypes, engine="c",
                             chunksize=_CHUNK_ROWS, skipinitialspace=True)
        with reader:
            for chunk in reader:
                if chunk[required].isna().to_numpy().any():
                    raise _NeedsScan
                if keep is not None:
                    chunk = chunk[chunk[keep[0]].isin(keep[1])]
                frames.append(chunk)
    except (ValueError, pd.errors.ParserError, _NeedsScan, UnicodeDecodeError) as exc:
        problem = _first_bad_line(path, columns, sep, skip_lines, fmt)
        if problem is not None:
            raise problem from None
        raise trace_error(f"cannot read this {fmt} file: {exc}", path,
                          hint=f"check that it is a {fmt} file") from None
    except OSError as exc:
        raise trace_error(f"cannot read the file: {exc}", path, hint="check the path") from None
    if not frames:
        return pd.DataFrame({n: pd.Series(dtype=dtypes[n]) for n in names})
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:  # type: ignore[operator]
        for raw in handle:
            yield raw.rstrip("\r\n")


def _first_bad_line(path: Path, columns: Sequence[Column], sep: str, skip_lines: int,
                    fmt: str) -> ScenarioError | None:
    """The first line that breaks the format, as an error naming the line and the column."""
    shown_sep = repr(sep.strip() or sep)
    for number, line in enumerate(_lines(path), start=1):
        if number <= skip_lines or not line.strip():
            continue
        fields = line.split(sep)
        if len(fields) == 1 and len(columns) > 1:
            found = [name for s, name in _OTHER_SEPARATORS.items() if s != sep and s in line]
            guess = f"; it holds {found[0]} instead" if found else ""
            return trace_error(
                f"no {shown_sep} between fields{guess}: {fmt} separates its "
                f"{len(columns)} columns with {shown_sep}", path, number,
                f"write the file in the {fmt} format, fields separated by {shown_sep}")
        if len(fields) < len(columns):
            missing = columns[len(fields)].name
            return trace_error(
                f"column {missing!r} is missing: the line has {len(fields)} of the "
                f"{len(columns)} columns of {fmt}", path, number,
                f"give every line all {len(columns)} columns, or remove this line")
        if len(fields) > len(columns):
            return trace_error(
                f"the line has {len(fields)} fields, {fmt} has {len(columns)} columns",
                path, number, f"remove the extra fields, or check the separator {shown_sep}")
        for column, value in zip(columns, fields, strict=True):
            text = value.strip()
            if not text:
                if column.kind == "optional":
                    continue
                return trace_error(f"column {column.name!r} is empty", path, number,
                                   "give it a value, or remove this line")
            if column.kind == "text":
                continue
            try:
                finite = math.isfinite(float(text))
            except ValueError:
                finite = False
            if not finite:  # nan and inf read as floats, but no reading is either
                return trace_error(f"column {column.name!r} holds {text!r}, not a number",
                                   path, number, "fix the value, or remove this line")
    return None
