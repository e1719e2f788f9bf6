"""PlanetLab CPU traces (as shipped with CloudSim) read into a :class:`DemandTable`.

The data comes in two forms:

* raw: one folder per day (``20110303`` ...), one file per VM, each file 288 lines holding an
  integer CPU utilisation in percent, one line per 5 minutes;
* compact: ``workloads/planetlab/planetlab.npz``, built from the raw folders by
  ``workloads/planetlab/build.py``, with ``cpu_<day>`` (uint8, files x 288, percent) and
  ``names_<day>`` (the file names, sorted) for every day. It is what the repository ships,
  because the raw folders are 47 MB of small files.

Both forms give identical tables: files sorted by name, values divided by 100 into float64
fractions, ``step_s`` 300 s.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vsim.errors import Problem, ScenarioError
from vsim.traces.table import DemandTable

__all__ = [
    "PLANETLAB_DAYS",
    "PLANETLAB_SAMPLES",
    "PLANETLAB_STEP_S",
    "default_planetlab_path",
    "list_planetlab_days",
    "read_planetlab",
    "read_raw_day",
]

PLANETLAB_DAYS: tuple[str, ...] = (
    "20110303",
    "20110306",
    "20110309",
    "20110322",
    "20110325",
    "20110403",
    "20110409",
    "20110411",
    "20110412",
    "20110420",
)
PLANETLAB_STEP_S = 300.0
PLANETLAB_SAMPLES = 288  # one day at 5-minute steps

_REBUILD_HINT = "rebuild it with `make workloads` (needs the raw folders) or restore it from git"
_ASCII_0, _ASCII_9, _NEWLINE = 48, 57, 10


def default_planetlab_path() -> Path:
    """``<repository root>/workloads/planetlab/planetlab.npz``, the compact file the repo ships."""
    # Found from this file (vsim/traces/planetlab.py) rather than from the `vsim` package object:
    # importing the top-level package here could pull in the higher layers it re-exports.
    return Path(__file__).resolve().parents[2] / "workloads" / "planetlab" / "planetlab.npz"


def _error(
    message: str, file: Path | str, line: int | None = None, hint: str = ""
) -> ScenarioError:
    return ScenarioError([Problem(message, line=line, hint=hint)], file=str(file))


# --- raw folders ------------------------------------------------------------------------------


def _day_files(folder: Path) -> list[Path]:
    """The trace files of a raw day folder, sorted by name (hidden files such as .DS_Store skipped)."""
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not files:
        raise _error("folder holds no trace files", folder, hint="expected one file per VM")
    return files


def _normalise(data: bytes) -> bytes:
    # Accept files edited on Windows (CRLF) and a missing final newline; line numbers are unchanged.
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if data and not data.endswith(b"\n"):
        data += b"\n"
    return data


def _find_bad_line(path: Path, data: bytes) -> ScenarioError | None:
    """The first problem in one file's bytes, checked line by line (only used once a day failed)."""
    lines = data.split(b"\n")[:-1]  # _normalise guarantees a final newline
    for number, raw in enumerate(lines[:PLANETLAB_SAMPLES], start=1):
        text = raw.decode("ascii", errors="replace")
        if not raw.isdigit() or int(raw) > 100:
            shown = repr(text) if text else "an empty line"
            return _error(
                f"{shown} is not an integer CPU percentage from 0 to 100",
                path,
                number,
                "each line holds one integer percentage; fix or remove this file",
            )
    if len(lines) < PLANETLAB_SAMPLES:
        return _error(
            f"file ends after {len(lines)} lines, expected {PLANETLAB_SAMPLES} (24 h at 5 min)",
            path,
            len(lines) + 1,
            "the file is truncated; restore it or remove it from the folder",
        )
    if len(lines) > PLANETLAB_SAMPLES:
        return _error(
            f"file has {len(lines)} lines, expected {PLANETLAB_SAMPLES} (24 h at 5 min)",
            path,
            PLANETLAB_SAMPLES + 1,
            "remove the extra lines",
        )
    return None


def _parse_slowly(files: list[Path], blobs: list[bytes]) -> np.ndarray:
    """Line-by-line parse, used only when the vectorised one fails: it names the first bad line."""
    for path, data in zip(files, blobs, strict=True):
        problem = _find_bad_line(path, data)
        if problem is not None:
            raise problem
    # Every file is valid but unusual (e.g. "007"): parse it the plain way.
    rows = [[int(v) for v in data.split(b"\n")[:-1]] for data in blobs]
    return np.asarray(rows, dtype=np.uint8)


def read_raw_day(folder: str | Path) -> tuple[tuple[str, ...], np.ndarray]:
    """File names (sorted) and CPU percent (uint8, files x 288) of one raw day folder.

    All files are parsed at once with numpy: the bytes are joined, and each line's value is the sum
    of its digits weighted by powers of ten counted from the line's end. Only when that fast path
    fails are the files scanned one by one, to report the first bad file and line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _error("PlanetLab day folder not found", folder, hint="check the path")
    files = _day_files(folder)
    blobs = [_normalise(p.read_bytes()) for p in files]
    names = tuple(p.name for p in files)
    if any(data.count(b"\n") != PLANETLAB_SAMPLES for data in blobs):
        return names, _parse_slowly(files, blobs)
    buf = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    is_newline = buf == _NEWLINE
    is_digit = (buf >= _ASCII_0) & (buf <= _ASCII_9)
    ends = np.flatnonzero(is_newline)
    lengths = np.diff(ends, prepend=-1) - 1
    # Every byte a digit or a newline, every line 1-3 digits (0..100 fits in three).
    if not (is_newline | is_digit).all() or lengths.min() < 1 or lengths.max() > 3:
        return names, _parse_slowly(files, blobs)
    line_of_byte = np.cumsum(is_newline) - is_newline
    digit_at = np.flatnonzero(is_digit)
    line_of_digit = line_of_byte[digit_at]
    power = ends[line_of_digit] - digit_at - 1  # 0 for the last digit of a line
    weights = (buf[digit_at] - _ASCII_0).astype(np.int64) * 10 ** power.astype(np.int64)
    values = np.bincount(line_of_digit, weights=weights, minlength=ends.size)
    if values.max() > 100:
        return names, _parse_slowly(files, blobs)
    return names, values.astype(np.uint8).reshape(len(files), PLANETLAB_SAMPLES)


def _raw_day_folders(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


# --- the compact file -------------------------------------------------------------------------


def _open_compact(path: Path) -> np.lib.npyio.NpzFile:
    if not zipfile.is_zipfile(path):
        raise _error(
            "not a compact PlanetLab file (.npz)",
            path,
            hint="give the compact .npz, a raw root folder or a raw day folder",
        )
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _error(
            f"cannot read the compact PlanetLab file: {exc}", path, hint=_REBUILD_HINT
        ) from exc


def _compact_days(npz: np.lib.npyio.NpzFile) -> list[str]:
    return sorted(k[len("cpu_") :] for k in npz.files if k.startswith("cpu_"))


def _read_compact(path: Path, day: str) -> tuple[tuple[str, ...], np.ndarray]:
    with _open_compact(path) as npz:
        days = _compact_days(npz)
        if day not in days:
            raise _error(
                f"no PlanetLab day {day!r} in this file; it holds {', '.join(days) or 'no days'}",
                path,
                hint="pick one of those days" if days else _REBUILD_HINT,
            )
        try:
            cpu = npz[f"cpu_{day}"]
            names = tuple(str(s) for s in npz[f"names_{day}"])
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
            raise _error(f"day {day} is damaged: {exc}", path, hint=_REBUILD_HINT) from exc
    if cpu.ndim != 2 or cpu.shape[1] != PLANETLAB_SAMPLES or cpu.shape[0] != len(names):
        raise _error(
            f"day {day} has CPU shape {cpu.shape} for {len(names)} names", path, hint=_REBUILD_HINT
        )
    return names, cpu


# --- public readers ---------------------------------------------------------------------------


def _resolve(path: str | Path | None) -> Path:
    resolved = default_planetlab_path() if path is None else Path(path)
    if not resolved.exists():
        hint = (
            _REBUILD_HINT if path is None else "give the compact .npz, a raw root or a day folder"
        )
        what = "compact PlanetLab file" if path is None else "PlanetLab data"
        raise _error(f"{what} not found", resolved, hint=hint)
    return resolved


def _unknown_day(day: str, where: Path, available: list[str]) -> ScenarioError:
    listing = ", ".join(available) if available else "none"
    return _error(
        f"no PlanetLab day {day!r} here; available days: {listing}",
        where,
        hint="pick one of those days, or point at the folder that holds this day",
    )


def read_planetlab(day: str, path: str | Path | None = None) -> DemandTable:
    """One PlanetLab day as a table of ``n_files`` series x 288 samples of 300 s.

    ``path`` is the compact ``.npz``, a raw root folder holding day folders, or one raw day folder
    (whose name must then be ``day``); ``None`` means the compact file shipped with vsim. Series
    are the day's files sorted by name; values are CPU percent / 100 as float64.
    """
    where = _resolve(path)
    if where.is_file():
        names, percent = _read_compact(where, day)
    else:
        folders = _raw_day_folders(where)
        if day in folders:
            folder = folders[day]
        elif where.name == day:
            folder = where
        elif folders:
            raise _unknown_day(day, where, list(folders))
        else:
            raise _error(
                f"this looks like a raw day folder, but it is named {where.name!r}, not {day!r}",
                where,
                hint=f"pass day={where.name!r}, or the folder that holds {day}/",
            )
        names, percent = read_raw_day(folder)
    return DemandTable(
        step_s=PLANETLAB_STEP_S,
        cpu=percent.astype(np.float64) / np.float32(100.0),
        names=names,
        source=f"planetlab:{day}",
    )


def list_planetlab_days(path: str | Path | None = None) -> list[tuple[str, int]]:
    """``(day, number of VMs)`` for every day in the compact file, a raw root or a raw day folder."""
    where = _resolve(path)
    if where.is_file():
        with _open_compact(where) as npz:
            try:
                return [(d, int(npz[f"names_{d}"].shape[0])) for d in _compact_days(npz)]
            except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
                raise _error(f"damaged file: {exc}", where, hint=_REBUILD_HINT) from exc
    folders = _raw_day_folders(where)
    if not folders:  # a single raw day folder
        return [(where.name, len(_day_files(where)))]
    return [(day, len(_day_files(folder))) for day, folder in folders.items()]
