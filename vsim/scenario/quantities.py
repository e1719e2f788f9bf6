"""Scenario field types that carry a unit: written "16 GiB" or "5 min", held as SI floats."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from vsim.units import format_quantity, parse_quantity

__all__ = ["Bandwidth", "BandwidthLimit", "Bytes", "BytesLimit", "Delay", "Duration", "Fraction", "Frequency", "Interval", "Lifetime", "Limit", "Power", "RamSize", "Rate", "Speed", "Time", "Work", "bytes_or_share", "check_within"]


def _quantity(kind: str, example: str, *, allow: tuple[str, ...] = (), positive: bool = False,
              fraction: bool = False) -> Any:
    """A float field written with a unit; ``positive``: > 0; ``fraction``: within [0, 1]."""

    def parse(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in allow:
            return math.inf
        number = parse_quantity(value, kind)
        if positive and not number > 0:
            raise ValueError(f"must be more than zero, got {value!r}")
        if fraction and not 0.0 <= number <= 1.0:
            raise ValueError(f"must be between 0% and 100%, got {value!r}")
        if not fraction and not positive and number < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return number

    extra = f" or one of {', '.join(allow)}" if allow else ""
    return Annotated[
        float,
        BeforeValidator(parse),
        WithJsonSchema({
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": f"a {kind} quantity such as {example!r} (plain numbers: base unit){extra}",
        }),
    ]


Time = _quantity("time", "5 min")
Interval = _quantity("time", "5 min", positive=True)
Bytes = _quantity("bytes", "16 GiB")
RamSize = _quantity("bytes", "16 GiB", positive=True)
Frequency = _quantity("frequency", "2.6 GHz")
Speed = _quantity("frequency", "2.6 GHz", positive=True)
Power = _quantity("power", "250 W")
Work = _quantity("work", "10000 MI", positive=True)
Fraction = _quantity("fraction", "35%", fraction=True)
Limit = _quantity("frequency", "4 GHz", allow=("unlimited", "none"), positive=True)
Lifetime = _quantity("time", "6 h", allow=("forever", "never", "inf"), positive=True)
Duration = _quantity("time", "2 d", allow=("jobs-done",), positive=True)
Delay = _quantity("time", "30 min", allow=("never",))
Bandwidth = _quantity("bandwidth", "1 Gbit/s", positive=True)
Rate = _quantity("bandwidth", "20 MiB/s")
BandwidthLimit = _quantity("bandwidth", "128 MiB/s", allow=("unlimited", "none"), positive=True)
BytesLimit = _quantity("bytes", "8 GiB", allow=("unlimited", "none"))


def bytes_or_share(what: str, of: str, example: str) -> Any:
    """A size written in bytes ('512 MiB', held as a float) or as a share of ``of`` ('25%', kept
    as text until the whole is known); ``what`` names it in errors."""

    def parse(value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            share = parse_quantity(value, "fraction")
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"a share of {of} is between 0% and 100%, got {value!r}")
            return value.strip()
        try:
            number = parse_quantity(value, "bytes")
        except ValueError:
            raise ValueError(f"cannot read {value!r} as {what}; write bytes like {example!r} "
                             f"or a share of {of} like '25%'") from None
        if number < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return number

    return Annotated[
        str | float, BeforeValidator(parse),
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}],
                        "description": f"bytes such as {example!r}, or a share of {of} such as "
                                       "'25%'"}),
    ]


def check_within(value: str | float, whole: float, name: str, of: str) -> None:
    """A :func:`bytes_or_share` value given in bytes must not exceed the whole it is part of (a
    share is checked when read)."""
    if isinstance(value, float) and value > whole:
        raise ValueError(f"{name} ({format_quantity(value, 'bytes')}) is more than {of} "
                         f"({format_quantity(whole, 'bytes')}); give at most that, or a share "
                         "such as '25%'")


WorkingSet = bytes_or_share("a working set", "RAM", "512 MiB")
BytesOrShare = bytes_or_share("a disk size", "the disk", "12 GiB")
