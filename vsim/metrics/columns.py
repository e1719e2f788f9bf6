"""Result tables as plain columns, turned into DataFrames or Parquet files only when asked.

A table is a dict of equally long columns: numpy arrays, lists of text, or :class:`Categories`
(integer codes into a few names). Writing Parquet goes straight from these columns to Arrow,
without building DataFrames, so a large run is saved without a second copy in memory and the
command line never has to import pandas; ``Tables`` gives each table as a DataFrame on first use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Categories", "Columns", "Tables", "to_frame", "write_parquet"]


@dataclass(frozen=True)
class Categories:
    """A categorical column: ``names[codes[i]]`` is row ``i``'s value."""

    codes: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)


Column = np.ndarray | list[str] | Categories
Columns = dict[str, Column]


def to_frame(columns: Columns) -> pd.DataFrame:
    import pandas as pd

    data: dict[str, Any] = {}
    for name, col in columns.items():
        if isinstance(col, Categories):
            data[name] = pd.Categorical.from_codes(col.codes.astype(np.int32), list(col.names))
        else:
            data[name] = col
    # copy=False keeps one block per column: no consolidation copy of a large table.
    return pd.DataFrame(data, copy=False)


def _numeric(pa: Any, values: np.ndarray) -> Any:
    # From the buffer: pyarrow's array() would import pandas to look for pandas types, which
    # costs more than the rest of a small run's save.
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values),
                                 [None, pa.py_buffer(values)])


def _text(pa: Any, values: list[str]) -> Any:
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = b"".join(encoded)
    return pa.Array.from_buffers(pa.string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def write_parquet(columns: Columns, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for col in columns.values():
        if isinstance(col, Categories):
            arrays.append(pa.DictionaryArray.from_arrays(
                _numeric(pa, col.codes.astype(np.int32)), _text(pa, list(col.names))))
        elif isinstance(col, list):
            arrays.append(_text(pa, col))
        else:
            arrays.append(_numeric(pa, col))
    pq.write_table(pa.Table.from_arrays(arrays, names=list(columns)), path)


class Tables(Mapping[str, "pd.DataFrame"]):
    """A run's tables by name; each becomes a pandas DataFrame the first time it is read."""

    def __init__(self, columns: dict[str, Columns]) -> None:
        self.columns = columns
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = to_frame(self.columns[name])
        return self._frames[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def write(self, folder: Path) -> None:
        """One Parquet file per table."""
        for name, cols in self.columns.items():
            write_parquet(cols, folder / f"{name}.parquet")
