"""Quantities written with units ("16 GiB", "2.4 GHz", "5 min") parsed once into SI base units.

Inside vsim every quantity is a float in an SI base unit: seconds, bytes, hertz, watts, joules,
bytes per second, cycles. Scenario files write values with their unit; this module turns them into
those floats and back into readable strings. Plain numbers are accepted and read as the base unit.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "KINDS",
    "UnitError",
    "format_quantity",
    "parse_quantity",
]


class UnitError(ValueError):
    """A value whose unit is missing, unknown or of the wrong kind."""


_KI, _MI, _GI, _TI, _PI = (1024.0**k for k in range(1, 6))

# kind -> {unit spelling: factor to the base unit}. Spellings are matched case-sensitively first
# (so "Mb" (megabit) and "MB" (megabyte) stay apart), then case-insensitively where unambiguous.
KINDS: dict[str, dict[str, float]] = {
    "time": {
        "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
        "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9,
        "min": 60.0, "minute": 60.0, "minutes": 60.0, "m": 60.0,
        "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
        "d": 86400.0, "day": 86400.0, "days": 86400.0,
        "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
        # Failure rates are quoted per year (MTBF "5 y"): a year of 365 days.
        "y": 31536000.0, "yr": 31536000.0, "year": 31536000.0, "years": 31536000.0,
    },
    "bytes": {
        "B": 1.0, "byte": 1.0, "bytes": 1.0,
        "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
        "KiB": _KI, "MiB": _MI, "GiB": _GI, "TiB": _TI, "PiB": _PI,
    },
    "frequency": {
        "Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9, "THz": 1e12,
        # CloudSim's MIPS: vsim assumes one instruction per cycle, so 1 MIPS = 1 MHz.
        "MIPS": 1e6,
    },
    "power": {"W": 1.0, "mW": 1e-3, "kW": 1e3, "MW": 1e6},
    "energy": {"J": 1.0, "kJ": 1e3, "MJ": 1e6, "GJ": 1e9, "Wh": 3600.0, "kWh": 3.6e6, "MWh": 3.6e9},
    "bandwidth": {  # base unit: bytes per second
        "B/s": 1.0, "kB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9,
        "KiB/s": _KI, "MiB/s": _MI, "GiB/s": _GI,
        "bit/s": 0.125, "bps": 0.125, "kbit/s": 125.0, "Kbps": 125.0, "kbps": 125.0,
        "Mbit/s": 125e3, "Mbps": 125e3, "Gbit/s": 125e6, "Gbps": 125e6, "Tbit/s": 125e9,
        "kb/s": 125.0, "Mb/s": 125e3, "Gb/s": 125e6, "Tb/s": 125e9,
    },
    "work": {  # base unit: cycles (one instruction per cycle, so MI = million cycles)
        "cycles": 1.0, "cycle": 1.0, "kcycles": 1e3, "Mcycles": 1e6, "Gcycles": 1e9,
        "Tcycles": 1e12, "MI": 1e6, "GI": 1e9,
    },
    "fraction": {"": 1.0, "%": 0.01},
}

_NUMBER = r"[-+]?(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([^\s\d.+-][^\s]*)?\s*$")


def _unit_factor(kind: str, unit: str) -> float:
    table = KINDS[kind]
    if unit in table:
        return table[unit]
    # No case-folding: "Mb/s" (megabit) is not "MB/s", nor "mWh" "MWh".
    known = ", ".join(k for k in table if k)
    raise UnitError(f"unknown {kind} unit {unit!r} (units are case-sensitive); use one of: {known}")


def parse_quantity(value: object, kind: str) -> float:
    """Parse ``value`` ("16 GiB", "2.4GHz", 300, "80%") into a float in the base unit of ``kind``.

    Numbers without a unit are taken in the base unit (seconds, bytes, Hz, W, J, B/s, cycles).
    """
    if kind not in KINDS:
        raise KeyError(f"unknown quantity kind {kind!r}")
    if isinstance(value, bool):
        raise UnitError(f"expected a {kind} quantity, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            example = _EXAMPLES[kind]
            raise UnitError(f"cannot read {value!r} as a {kind} quantity; write it like {example!r}")
        number = float(match.group(1).replace("_", ""))
        unit = match.group(2) or ""
        if unit:
            number *= _unit_factor(kind, unit)
    else:
        raise UnitError(f"expected a {kind} quantity such as {_EXAMPLES[kind]!r}, got {value!r}")
    if not math.isfinite(number):
        raise UnitError(f"{value!r} is not a finite {kind} quantity")
    return number


_EXAMPLES = {
    "time": "5 min",
    "bytes": "16 GiB",
    "frequency": "2.4 GHz",
    "power": "250 W",
    "energy": "3 kWh",
    "bandwidth": "10 Gbit/s",
    "work": "10000 MI",
    "fraction": "80%",
}

_DISPLAY = {
    "time": [("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3)],
    "bytes": [("TiB", _TI), ("GiB", _GI), ("MiB", _MI), ("KiB", _KI), ("B", 1.0)],
    "frequency": [("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3), ("Hz", 1.0)],
    "power": [("MW", 1e6), ("kW", 1e3), ("W", 1.0)],
    "energy": [("MWh", 3.6e9), ("kWh", 3.6e6), ("Wh", 3600.0), ("J", 1.0)],
    "bandwidth": [("Gbit/s", 125e6), ("Mbit/s", 125e3), ("kbit/s", 125.0), ("B/s", 1.0)],
    "work": [("Tcycles", 1e12), ("Gcycles", 1e9), ("Mcycles", 1e6), ("cycles", 1.0)],
    "fraction": [("%", 0.01)],
}


def format_quantity(value: float, kind: str, digits: int = 3) -> str:
    """Readable form of a base-unit value: ``format_quantity(17179869184, "bytes") == "16 GiB"``."""
    for unit, factor in _DISPLAY[kind]:
        if abs(value) >= factor or factor == _DISPLAY[kind][-1][1]:
            return f"{value / factor:.{digits}g} {unit}"
    raise AssertionError("unreachable")
