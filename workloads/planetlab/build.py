"""Build the compact PlanetLab file (planetlab.npz) from the raw CloudSim day folders.

    python workloads/planetlab/build.py RAW_DIR [--out workloads/planetlab/planetlab.npz]

RAW_DIR holds one folder per day (20110303, ...), each with one file per VM of 288 integer CPU
percentages. The output holds, for every day, ``cpu_<day>`` (uint8, files x 288) and
``names_<day>`` (the file names as a unicode array, sorted), and loads with allow_pickle=False.
Every file is validated (288 lines, integers 0-100); a bad one stops the build with its name and
line. The result is read back and compared with the raw data before it replaces the old file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from vsim.errors import VsimError
from vsim.traces.planetlab import read_planetlab, read_raw_day

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "planetlab.npz"
# A fixed member timestamp makes rebuilding from the same data give the same bytes, so the file
# only shows up as changed in version control when the data changed.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def collect(raw_dir: Path) -> dict[str, np.ndarray]:
    """``cpu_<day>`` and ``names_<day>`` arrays for every day folder under ``raw_dir``."""
    days = sorted(p for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not days:
        raise SystemExit(f"{raw_dir}: no day folders found (expected e.g. {raw_dir}/20110303/)")
    arrays: dict[str, np.ndarray] = {}
    for folder in days:
        names, percent = read_raw_day(folder)
        arrays[f"cpu_{folder.name}"] = percent
        arrays[f"names_{folder.name}"] = np.array(names, dtype=str)
    return arrays


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a compressed .npz with fixed timestamps, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".planetlab-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for key, array in arrays.items():
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the data file is meant to be world-readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_round_trip(path: Path, raw_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """Read ``path`` back and require every day to equal the raw data, through the public reader too."""
    with np.load(path, allow_pickle=False) as npz:
        if sorted(npz.files) != sorted(arrays):
            raise SystemExit(f"{path}: keys {sorted(npz.files)} differ from {sorted(arrays)}")
        for key, array in arrays.items():
            stored = npz[key]
            if stored.dtype != array.dtype or not np.array_equal(stored, array):
                raise SystemExit(f"{path}: {key} does not match the raw data")
    for key in arrays:
        if key.startswith("cpu_"):
            day = key[len("cpu_") :]
            compact, raw = read_planetlab(day, path), read_planetlab(day, raw_dir)
            if compact.names != raw.names or not np.array_equal(compact.cpu, raw.cpu):
                raise SystemExit(f"{path}: day {day} reads differently from {raw_dir / day}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_dir", type=Path, help="folder holding the raw day folders")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    if not args.raw_dir.is_dir():
        print(f"{args.raw_dir}: folder not found", file=sys.stderr)
        return 2
    try:
        arrays = collect(args.raw_dir)
        write_npz(args.out, arrays)
        check_round_trip(args.out, args.raw_dir, arrays)
    except VsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    days = [k[len("cpu_") :] for k in arrays if k.startswith("cpu_")]
    total = sum(arrays[f"cpu_{d}"].shape[0] for d in days)
    size = args.out.stat().st_size
    print(f"{args.out}: {len(days)} days, {total} VMs, {size / 1e6:.2f} MB, checked against raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
