"""Quantities with units: parsed once into SI base units, formatted back for people."""

from __future__ import annotations

import math

import pytest

from vsim.units import KINDS, UnitError, format_quantity, parse_quantity

KIB, MIB, GIB, TIB = (1024**k for k in range(1, 5))


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        # Binary prefixes are powers of 1024, decimal ones powers of 1000.
        ("16 GiB", "bytes", 16 * GIB),
        ("16 GB", "bytes", 16 * 1000**3),
        ("512 MiB", "bytes", 512 * MIB),
        ("1 TiB", "bytes", TIB),
        ("4 KiB", "bytes", 4 * KIB),
        ("3 kB", "bytes", 3000.0),
        ("1 B", "bytes", 1.0),
        # Bandwidth is bytes per second; a bit is 1/8 byte.
        ("10 Gbit/s", "bandwidth", 10e9 / 8),
        ("10 Gbps", "bandwidth", 10e9 / 8),
        ("100 Mbit/s", "bandwidth", 100e6 / 8),
        ("1 kbit/s", "bandwidth", 1e3 / 8),
        ("128 MiB/s", "bandwidth", 128 * MIB),
        ("1 GB/s", "bandwidth", 1e9),
        # Time in seconds.
        ("5 min", "time", 5 * 60.0),
        ("5min", "time", 5 * 60.0),
        ("2 h", "time", 2 * 3600.0),
        ("2 d", "time", 2 * 86400.0),
        ("1 week", "time", 7 * 86400.0),
        ("300 ms", "time", 0.3),
        ("30 s", "time", 30.0),
        # Frequency in Hz; CloudSim's MIPS is read as MHz (one instruction per cycle).
        ("2.4 GHz", "frequency", 2.4e9),
        ("2600 MHz", "frequency", 2.6e9),
        ("1000 MIPS", "frequency", 1000 * 1e6),
        # Work in cycles: a million instructions is a million cycles.
        ("10000 MI", "work", 10000 * 1e6),
        # Power and energy.
        ("250 W", "power", 250.0),
        ("1.5 kW", "power", 1500.0),
        ("3 kWh", "energy", 3 * 1000 * 3600.0),
        ("1 Wh", "energy", 3600.0),
        # Percent is a hundredth; a bare number is already a fraction.
        ("35%", "fraction", 0.35),
        ("35 %", "fraction", 0.35),
        ("0.35", "fraction", 0.35),
        # Number syntax: underscores, exponents, leading dot, sign.
        ("1_000 MHz", "frequency", 1e9),
        ("1e3 MHz", "frequency", 1e9),
        (".5 GHz", "frequency", 0.5e9),
        ("-5 min", "time", -300.0),
    ],
)
def test_parse_quantity(text: str, kind: str, expected: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(expected, rel=1e-12)


def test_mips_is_mhz() -> None:
    assert parse_quantity("2500 MIPS", "frequency") == parse_quantity("2500 MHz", "frequency")


def test_gib_and_gb_differ_by_the_binary_factor() -> None:
    ratio = parse_quantity("1 GiB", "bytes") / parse_quantity("1 GB", "bytes")
    assert ratio == pytest.approx(1024**3 / 1000**3)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [(300, "time", 300.0), (2.5e9, "frequency", 2.5e9), (0, "bytes", 0.0), (0.5, "fraction", 0.5)],
)
def test_plain_numbers_are_the_base_unit(value: float, kind: str, expected: float) -> None:
    assert parse_quantity(value, kind) == expected
    assert isinstance(parse_quantity(value, kind), float)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("16 gib", "bytes"), ("16 gb", "bytes"), ("2 ghz", "frequency"), ("5 MIN", "time"),
     ("10 GBPS", "bandwidth")],
)
def test_units_are_case_sensitive(text: str, kind: str) -> None:
    # No guessing from another case: "Mb" is not "MB", nor "mWh" "MWh".
    with pytest.raises(UnitError, match="case-sensitive"):
        parse_quantity(text, kind)


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        # Bits, not bytes: 100 megabits per second are 100e6 / 8 bytes per second.
        ("100 Mb/s", "bandwidth", 100e6 / 8),
        ("1 Gb/s", "bandwidth", 1e9 / 8),
        ("56 kb/s", "bandwidth", 56e3 / 8),
        ("100 MB/s", "bandwidth", 100e6),
    ],
)
def test_megabits_and_megabytes_stay_apart(text: str, kind: str, expected: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(expected)


@pytest.mark.parametrize(("text", "kind"), [("1 mWh", "energy"), ("1 mJ", "energy"),
                                            ("5 mw", "power"), ("1 Mw", "power")])
def test_a_unit_of_another_case_is_never_misread(text: str, kind: str) -> None:
    # 'mWh' is not a unit vsim knows; reading it as 'MWh' would be off by 10^9.
    with pytest.raises(UnitError) as info:
        parse_quantity(text, kind)
    assert repr(text.split()[1]) in str(info.value)


@pytest.mark.parametrize(
    ("value", "kind", "example"),
    [
        ("sixteen GiB", "bytes", "16 GiB"),
        ("", "time", "5 min"),
        ("GHz", "frequency", "2.4 GHz"),
        ("2.4.1 GHz", "frequency", "2.4 GHz"),
        ("5 min 3 s", "time", "5 min"),
        ("nan", "power", "250 W"),
        (None, "bytes", "16 GiB"),
        ([1, 2], "time", "5 min"),
    ],
)
def test_bad_values_raise_with_an_example(value: object, kind: str, example: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_quantity(value, kind)
    assert repr(example) in str(info.value)


@pytest.mark.parametrize(
    ("text", "kind", "unit", "known"),
    [
        ("2 parsecs", "time", "parsecs", "min"),
        ("16 GiB", "frequency", "GiB", "GHz"),  # a unit of the wrong kind
        ("3 furlongs", "bytes", "furlongs", "GiB"),
    ],
)
def test_unknown_units_name_the_unit_and_the_valid_ones(
    text: str, kind: str, unit: str, known: str
) -> None:
    with pytest.raises(UnitError) as info:
        parse_quantity(text, kind)
    message = str(info.value)
    assert repr(unit) in message
    assert kind in message
    assert known in message.split("use one of:")[1].split(", ")


def test_unit_error_is_a_value_error() -> None:
    assert issubclass(UnitError, ValueError)


@pytest.mark.parametrize("value", [True, False, math.inf, -math.inf, math.nan, "1e999 s"])
def test_booleans_and_non_finite_numbers_are_refused(value: object) -> None:
    with pytest.raises(UnitError):
        parse_quantity(value, "time")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        parse_quantity("1 m", "length")


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (16 * GIB, "bytes", "16 GiB"),
        (1.5 * MIB, "bytes", "1.5 MiB"),
        (0, "bytes", "0 B"),
        (300.0, "time", "5 min"),
        (0.5, "time", "500 ms"),
        (7200.0, "time", "2 h"),
        (2.4e9, "frequency", "2.4 GHz"),
        (10e9 / 8, "bandwidth", "10 Gbit/s"),
        (0.35, "fraction", "35 %"),
        (250.0, "power", "250 W"),
        (3.6e6, "energy", "1 kWh"),
        (1e10, "work", "10 Gcycles"),
    ],
)
def test_format_quantity(value: float, kind: str, text: str) -> None:
    assert format_quantity(value, kind) == text


def test_format_quantity_digits() -> None:
    assert format_quantity(1 / 3 * 3600, "time", digits=2) == "20 min"
    assert format_quantity(1e9 / 3, "frequency", digits=5) == "333.33 MHz"


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("value", [1.0, 37.0, 4096.0, 3.3e5, 2.75e9, 6.1e12])
def test_format_then_parse_round_trips_to_the_shown_digits(kind: str, value: float) -> None:
    shown = format_quantity(value, kind, digits=6)
    assert parse_quantity(shown, kind) == pytest.approx(value, rel=1e-5)
