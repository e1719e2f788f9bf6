"""Host overload detectors (THR, IQR, MAD, LR, LRR) against values worked out by hand.

Beloglazov & Buyya, CCPE 2012, with CloudSim 3.0.3's arithmetic
(shared/reference/cloudsim-planetlab.md, "Overload tests"). Histories are oldest first and
right-aligned in a (H, W) array; entries left of the last n_valid are padding and are ignored.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from vsim.policies.overload import (
    OVERLOAD_DETECTORS,
    InterQuartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    commons_median,
    make_overload_detector,
)

W = 30

# Twelve utilisation values in the order they were recorded (oldest first). Sorted they are
#   0.40 0.43 0.45 0.48 0.50 0.52 0.55 0.58 0.60 0.62 0.66 0.70
TWELVE = [0.55, 0.40, 0.62, 0.48, 0.70, 0.45, 0.58, 0.52, 0.66, 0.43, 0.60, 0.50]
# The same plus 0.68 recorded last; sorted:
#   0.40 0.43 0.45 0.48 0.50 0.52 0.55 0.58 0.60 0.62 0.66 0.68 0.70
THIRTEEN = [*TWELVE, 0.68]


def hosts(*histories: list[float], pad: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
    """(history, n_valid) for hosts with the given histories, right-aligned in W columns; the
    columns left of each history hold ``pad``, which no detector may look at."""
    history = np.full((len(histories), W), pad)
    for h, values in enumerate(histories):
        if values:
            history[h, W - len(values):] = values
    return history, np.array([len(v) for v in histories])


def run(detector, util: list[float], *histories: list[float]) -> list[bool]:
    history, n_valid = hosts(*histories)
    return make_overload_detector(detector[0], **detector[1])(np.array(util), history,
                                                              n_valid).tolist()


# --- THR -----------------------------------------------------------------------------------------


def test_thr_is_strictly_above_the_threshold() -> None:
    # u > 0.8: at 0.8 exactly not overloaded, the next float above is, below is not. The history
    # plays no part.
    above = np.nextafter(0.8, 1.0)
    history, n_valid = hosts([], [0.9] * 30, [0.1] * 5, [])
    mask = make_overload_detector("thr")(np.array([0.8, above, 0.79, 1.3]), history, n_valid)
    assert mask.tolist() == [False, True, False, True]


def test_thr_with_another_threshold() -> None:
    history, n_valid = hosts([], [])
    mask = make_overload_detector("thr", threshold=0.5)(np.array([0.5, 0.51]), history, n_valid)
    assert mask.tolist() == [False, True]


# --- IQR -----------------------------------------------------------------------------------------


def test_iqr_on_twelve_values() -> None:
    # n = 12: Q1 index round(0.25 * 13) - 1 = round(3.25) - 1 = 2 -> 0.45,
    #         Q3 index round(0.75 * 13) - 1 = round(9.75) - 1 = 9 -> 0.62.
    # IQR = 0.62 - 0.45 = 0.17; threshold = 1 - 1.5 * 0.17 = 0.745.
    expected = 1 - 1.5 * (0.62 - 0.45)
    history, n_valid = hosts(TWELVE)
    assert InterQuartileRange().upper_thresholds(history, n_valid)[0] == pytest.approx(expected)
    assert expected == pytest.approx(0.745)
    # 0.75 > 0.745 is overloaded; 0.74 and 0.72 are not (though both exceed the fallback's 0.7).
    assert run(("iqr", {}), [0.75, 0.74, 0.72], TWELVE, TWELVE, TWELVE) == [True, False, False]


def test_iqr_rounds_halves_up_like_java() -> None:
    # n = 13: Q1 index round(0.25 * 14) - 1 = round(3.5) - 1 = 4 - 1 = 3 -> 0.48,
    #         Q3 index round(0.75 * 14) - 1 = round(10.5) - 1 = 11 - 1 = 10 -> 0.66.
    # (Rounding half to even would give index 9 -> 0.62 for Q3.) IQR = 0.18, threshold 0.73.
    history, n_valid = hosts(THIRTEEN)
    threshold = InterQuartileRange().upper_thresholds(history, n_valid)[0]
    assert threshold == pytest.approx(1 - 1.5 * (0.66 - 0.48))
    assert threshold == pytest.approx(0.73)


def test_iqr_safety_parameter() -> None:
    # threshold = 1 - 2 * 0.17 = 0.66
    history, n_valid = hosts(TWELVE)
    assert InterQuartileRange(safety=2.0).upper_thresholds(history, n_valid)[0] == \
        pytest.approx(1 - 2.0 * 0.17)


def test_iqr_with_eleven_values_falls_back_to_thr_0_7() -> None:
    # 11 < 12 values: no IQR; overloaded iff u > 0.7.
    eleven = TWELVE[1:]
    history, n_valid = hosts(eleven)
    assert np.isnan(InterQuartileRange().upper_thresholds(history, n_valid)[0])
    assert run(("iqr", {}), [0.72, 0.7, 0.69], eleven, eleven, eleven) == [True, False, False]


# --- MAD -----------------------------------------------------------------------------------------


def test_mad_on_twelve_values() -> None:
    # median (even n) = mean of the 6th and 7th sorted values = (0.52 + 0.55) / 2 = 0.535.
    # |x - 0.535| sorted: 0.015 0.015 0.035 0.045 0.055 0.065 0.085 0.085 0.105 0.125 0.135 0.165
    # MAD = (0.065 + 0.085) / 2 = 0.075; threshold = 1 - 2.5 * 0.075 = 0.8125.
    history, n_valid = hosts(TWELVE)
    threshold = MedianAbsoluteDeviation().upper_thresholds(history, n_valid)[0]
    assert threshold == pytest.approx(1 - 2.5 * 0.075)
    assert run(("mad", {}), [0.82, 0.81], TWELVE, TWELVE) == [True, False]


def test_mad_on_thirteen_values() -> None:
    # median (odd n) = the 7th sorted value = 0.55.
    # |x - 0.55| sorted: 0 0.03 0.03 0.05 0.05 0.07 0.07 0.10 0.11 0.12 0.13 0.15 0.15
    # MAD = the 7th = 0.07; threshold = 1 - 2.5 * 0.07 = 0.825.
    history, n_valid = hosts(THIRTEEN)
    threshold = MedianAbsoluteDeviation().upper_thresholds(history, n_valid)[0]
    assert threshold == pytest.approx(1 - 2.5 * 0.07)
    assert run(("mad", {}), [0.83, 0.82], THIRTEEN, THIRTEEN) == [True, False]


def test_mad_with_eleven_values_falls_back_to_thr_0_7() -> None:
    eleven = THIRTEEN[2:]
    assert run(("mad", {}), [0.71, 0.7], eleven, eleven) == [True, False]


def test_median_of_an_even_count_is_computed_as_commons_math_does() -> None:
    # Apache Commons' percentile(50) of [0.19, 0.8]: position 0.5 * (2 + 1) = 1.5, so
    # 0.19 + 0.5 * (0.8 - 0.19), which is one ulp above (0.19 + 0.8) / 2 = 0.495.
    value = commons_median(np.array([[0.19, 0.8]]), np.array([2]))[0]
    assert value == 0.19 + 0.5 * (0.8 - 0.19)
    assert value == np.nextafter(0.495, 1.0)


# --- LR and LRR ----------------------------------------------------------------------------------


def test_lr_on_a_straight_line_predicts_its_next_point() -> None:
    # y = 0.5, 0.52, ..., 0.68 at x = 1..10 lies on a + b x with b = 0.02, a = 0.48; at x = 11 the
    # line gives 0.70, and 1.2 * 0.70 = 0.84 < 1: not overloaded, even with u far above 0.7.
    line = [0.5 + 0.02 * i for i in range(10)]
    history, n_valid = hosts(line)
    assert LocalRegression().predicted(history, n_valid)[0] == pytest.approx(1.2 * 0.70)
    # A steeper one: 0.65, 0.67, ..., 0.83 -> 0.85 at x = 11; 1.2 * 0.85 = 1.02 >= 1, overloaded
    # even though the host is at u = 0.1 right now.
    steep = [0.65 + 0.02 * i for i in range(10)]
    assert run(("lr", {}), [0.95, 0.1], line, steep) == [False, True]


def test_lr_overloaded_at_exactly_one() -> None:
    # y = 0.375 + 0.0625 (x - 1) (binary fractions, so the fit is exact) reaches 1.0 at x = 11;
    # with safety 1, 1.0 >= 1 is overloaded, and the point just below the line is not.
    line = [0.375 + 0.0625 * i for i in range(10)]
    history, n_valid = hosts(line)
    assert LocalRegression(safety=1.0).predicted(history, n_valid)[0] == 1.0
    assert run(("lr", {"safety": 1.0}), [0.0], line) == [True]
    assert run(("lr", {"safety": np.nextafter(1.0, 0.0)}), [0.0], line) == [False]


def test_lr_uses_only_the_last_ten_values() -> None:
    # 20 values, the older 10 at 0.99, the last 10 the flat 0.3: the line is flat at 0.3,
    # 1.2 * 0.3 = 0.36, not overloaded.
    values = [0.99] * 10 + [0.3] * 10
    history, n_valid = hosts(values)
    assert LocalRegression().predicted(history, n_valid)[0] == pytest.approx(0.36)


def test_lr_on_noisy_history_matches_numpy_polyfit() -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(0.2, 0.9, size=(25, 10))
    history = np.full((25, W), np.nan)
    history[:, -10:] = values
    n_valid = np.full(25, 10)
    predicted = LocalRegression(safety=1.2).predicted(history, n_valid)
    x = np.arange(1, 11)
    for h in range(25):
        b, a = np.polyfit(x, values[h], 1)
        assert predicted[h] == pytest.approx(1.2 * (a + 11 * b), rel=1e-12, abs=1e-12)


def test_lr_with_nine_values_falls_back_to_thr_0_7() -> None:
    steep = [0.65 + 0.02 * i for i in range(9)]  # would be overloaded by LR (see above)
    assert run(("lr", {}), [0.1, 0.71], steep, steep) == [False, True]


def test_lrr_decides_exactly_as_lr() -> None:
    rng = np.random.default_rng(3)
    history = rng.uniform(0.0, 1.0, size=(300, W))
    n_valid = rng.integers(0, W + 1, size=300)
    util = rng.uniform(0.5, 1.0, size=300)
    lr = make_overload_detector("lr")
    lrr = make_overload_detector("lrr")
    assert np.array_equal(lr(util, history, n_valid), lrr(util, history, n_valid))
    assert np.array_equal(lr.predicted(history, n_valid), lrr.predicted(history, n_valid),
                          equal_nan=True)


# --- vectorised over hosts = one host at a time ---------------------------------------------------


def _java_round(v: float) -> int:
    return math.floor(v + 0.5)


def loop_detector(name: str, u: float, values: list[float]) -> bool:
    """One host, plain Python (stdlib statistics), straight from the definitions."""
    n = len(values)
    if name == "thr":
        return u > 0.8
    if name == "iqr":
        if n < 12:
            return u > 0.7
        x = sorted(values)
        iqr = x[_java_round(0.75 * (n + 1)) - 1] - x[_java_round(0.25 * (n + 1)) - 1]
        return u > 1 - 1.5 * iqr
    if name == "mad":
        if n < 12:
            return u > 0.7
        med = statistics.median(values)
        return u > 1 - 2.5 * statistics.median([abs(v - med) for v in values])
    # lr, lrr
    if n < 10:
        return u > 0.7
    slope, intercept = statistics.linear_regression(range(1, 11), values[-10:])
    return 1.2 * (intercept + 11 * slope) >= 1


@pytest.mark.parametrize("name", sorted(OVERLOAD_DETECTORS))
def test_vectorised_equals_a_loop_over_hosts(name: str) -> None:
    rng = np.random.default_rng(2012)
    n_hosts = 200
    n_valid = rng.integers(0, W + 1, size=n_hosts)
    n_valid[:8] = [0, 11, 12, 30, 9, 10, 13, 1]
    # Utilisations around 0.7-0.8 and histories that put the adaptive thresholds in the same
    # range, so that both answers occur for every detector.
    history = rng.uniform(0.3, 0.9, size=(n_hosts, W))
    history[::3] = np.clip(history[::3] * rng.uniform(0.6, 1.4, size=(1, W)), 0.0, 1.0)
    history[::5] = rng.uniform(0.55, 0.75, size=(len(history[::5]), W))
    util = rng.uniform(0.55, 1.0, size=n_hosts)
    # Padding is garbage: zeros in some rows, large values in others.
    pad = np.arange(W) < (W - n_valid)[:, None]
    history[pad] = np.where(rng.random(pad.sum()) < 0.5, 0.0, 7.0)

    mask = make_overload_detector(name)(util, history, n_valid)
    expected = [loop_detector(name, float(util[h]), history[h, W - n_valid[h]:].tolist())
                for h in range(n_hosts)]
    assert mask.dtype == bool and mask.shape == (n_hosts,)
    assert mask.tolist() == expected
    assert 0 < mask.sum() < n_hosts


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(0)
    history = rng.random((50, W))
    n_valid = rng.integers(0, W + 1, size=50)
    util = rng.random(50)
    copies = history.copy(), n_valid.copy(), util.copy()
    for name in OVERLOAD_DETECTORS:
        make_overload_detector(name)(util, history, n_valid)
    assert all(np.array_equal(a, b) for a, b in zip(copies, (history, n_valid, util), strict=True))


def test_no_hosts() -> None:
    for name in OVERLOAD_DETECTORS:
        mask = make_overload_detector(name)(np.zeros(0), np.zeros((0, W)), np.zeros(0, int))
        assert mask.shape == (0,) and mask.dtype == bool


# --- the registry --------------------------------------------------------------------------------


def test_unknown_detector_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown overload detector 'iqr2'.*iqr, lr, lrr, mad, thr"):
        make_overload_detector("iqr2")


def test_unknown_parameter_names_the_accepted_one() -> None:
    with pytest.raises(ValueError, match=r"'thr' has no parameter safety.*takes: threshold"):
        make_overload_detector("thr", safety=1.0)
    with pytest.raises(ValueError, match="finite"):
        make_overload_detector("mad", safety=float("nan"))


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"n_valid must lie in 0..30"):
        make_overload_detector("iqr")(np.zeros(2), np.zeros((2, W)), np.array([3, 31]))
    with pytest.raises(ValueError, match="shapes"):
        make_overload_detector("thr")(np.zeros(3), np.zeros((2, W)), np.zeros(2, int))
