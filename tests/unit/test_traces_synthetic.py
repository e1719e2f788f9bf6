"""Synthetic generator: determinism, and each feature's statistics against what the spec says.

Tolerances are a few standard errors of the estimate (worked out next to each assertion), so a
correct generator fails with negligible probability and a wrong one (off by a constant, wrong
scale, wrong sign) fails every time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vsim.traces import DemandTable, SyntheticSpec, generate_synthetic
from vsim.traces.synthetic import _bursts

DAY = 86400.0
STEP = 300.0


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


FULL = SyntheticSpec(
    mean=0.3,
    mean_spread=0.5,
    diurnal_amplitude=0.4,
    noise_sd=0.05,
    noise_corr=0.7,
    burst_rate_per_s=1 / 3600,
    burst_height=0.3,
    burst_duration_s=600.0,
    arrival_rate_per_s=1 / 60,
    lifetime_mean_s=20000.0,
    lifetime_distribution="lognormal",
)


def test_shape_names_and_types():
    table = generate_synthetic(FULL, 50, DAY, STEP, rng(), name="web")
    assert isinstance(table, DemandTable)
    assert table.cpu.shape == (50, 288) and table.cpu.dtype == np.float64
    assert table.cpu.flags.c_contiguous
    assert table.names[0] == "web-0" and table.names[-1] == "web-49"
    assert table.source == "synthetic:web" and table.step_s == STEP
    assert table.start_s.shape == (50,) and table.lifetime_s.shape == (50,)


def test_sample_count_covers_the_duration():
    assert generate_synthetic(SyntheticSpec(), 1, 1.0, 0.1, rng()).n_samples == 10
    assert generate_synthetic(SyntheticSpec(), 1, 1000.0, 300.0, rng()).n_samples == 4  # ceil
    assert generate_synthetic(SyntheticSpec(), 0, DAY, STEP, rng()).cpu.shape == (0, 288)


def test_same_seed_same_output_other_seed_other_output():
    a = generate_synthetic(FULL, 200, DAY, STEP, rng(7))
    b = generate_synthetic(FULL, 200, DAY, STEP, rng(7))
    c = generate_synthetic(FULL, 200, DAY, STEP, rng(8))
    np.testing.assert_array_equal(a.cpu, b.cpu)
    np.testing.assert_array_equal(a.start_s, b.start_s)
    np.testing.assert_array_equal(a.lifetime_s, b.lifetime_s)
    assert not np.array_equal(a.cpu, c.cpu)
    assert not np.array_equal(a.start_s, c.start_s)


def test_the_generator_is_advanced_so_two_calls_differ():
    g = rng(3)
    first = generate_synthetic(FULL, 20, DAY, STEP, g)
    second = generate_synthetic(FULL, 20, DAY, STEP, g)
    assert not np.array_equal(first.cpu, second.cpu)


def test_features_draw_from_independent_streams():
    # Switching noise and bursts off leaves arrivals, lifetimes and per-VM means unchanged.
    quiet = SyntheticSpec(
        mean=FULL.mean,
        mean_spread=FULL.mean_spread,
        arrival_rate_per_s=FULL.arrival_rate_per_s,
        lifetime_mean_s=FULL.lifetime_mean_s,
        lifetime_distribution=FULL.lifetime_distribution,
    )
    loud = generate_synthetic(FULL, 100, DAY, STEP, rng(5))
    calm = generate_synthetic(quiet, 100, DAY, STEP, rng(5))
    np.testing.assert_array_equal(loud.start_s, calm.start_s)
    np.testing.assert_array_equal(loud.lifetime_s, calm.lifetime_s)
    steady = generate_synthetic(SyntheticSpec(mean=0.3, mean_spread=0.5), 100, DAY, STEP, rng(5))
    present = calm.cpu > 0
    np.testing.assert_array_equal(calm.cpu[present], steady.cpu[present])


def test_defaults_are_constant_and_always_present():
    table = generate_synthetic(SyntheticSpec(), 10, DAY, STEP, rng())
    assert (table.cpu == np.float64(0.3)).all()
    assert (table.start_s == 0).all() and np.isinf(table.lifetime_s).all()


def test_mean_converges():
    # Per-VM mean = 0.3 (1 + 0.4 U(-1,1)): sd 0.3*0.4/sqrt(3) = 0.069, so the grand mean over
    # n = 20000 VMs has sd 0.069/sqrt(n) = 4.9e-4. The AR(1) noise adds a per-VM time-average sd
    # of sqrt(sd^2 (1+φ)/(1-φ) / T) = 0.0051, i.e. 3.6e-5 over n: negligible. The lowest VM mean,
    # 0.18, is 3.6 noise sd above 0, so clipping changes the mean by < 1e-5. Tolerance: 5 sd.
    spec = SyntheticSpec(mean=0.3, mean_spread=0.4, noise_sd=0.05, noise_corr=0.5)
    n = 20000
    table = generate_synthetic(spec, n, DAY, STEP, rng(11))
    sd = 0.3 * 0.4 / math.sqrt(3) / math.sqrt(n)
    assert abs(float(table.cpu.mean(dtype=np.float64)) - 0.3) < 5 * sd
    # Without noise each row is constant and the per-VM means span [0.18, 0.42].
    steady = generate_synthetic(SyntheticSpec(mean=0.3, mean_spread=0.4), n, DAY, STEP, rng(11))
    row_means = steady.cpu[:, 0]
    assert (steady.cpu == row_means[:, None]).all()
    assert 0.18 <= row_means.min() < 0.181 and 0.419 < row_means.max() <= 0.42


def test_diurnal_peak_and_trough():
    # level = 0.4 (1 + 0.5 cos(2π (t - 14 h) / 1 day)): 0.6 at 14:00 (sample 168 at 5 min),
    # 0.2 at 02:00 (sample 24), and a daily average of exactly 0.4.
    spec = SyntheticSpec(mean=0.4, diurnal_amplitude=0.5, peak_time_s=14 * 3600.0)
    row = generate_synthetic(spec, 3, DAY, STEP, rng()).cpu[0]
    assert int(np.argmax(row)) == 168 and row[168] == pytest.approx(0.6, abs=1e-6)
    assert int(np.argmin(row)) == 24 and row[24] == pytest.approx(0.2, abs=1e-6)
    assert float(row.mean(dtype=np.float64)) == pytest.approx(0.4, abs=1e-6)
    early = SyntheticSpec(mean=0.4, diurnal_amplitude=0.5, peak_time_s=3.5 * 3600.0)
    assert int(np.argmax(generate_synthetic(early, 1, DAY, STEP, rng()).cpu[0])) == 42


def test_ar1_noise_sd_correlation_and_stationarity():
    sd, phi, n = 0.05, 0.8, 4000
    spec = SyntheticSpec(mean=0.5, noise_sd=sd, noise_corr=phi)  # 0.5 is 10 sd from 0 and 1
    x = generate_synthetic(spec, n, DAY, STEP, rng(21)).cpu.astype(np.float64) - 0.5
    big_n = x.size
    # Sample sd over N = n T values of an AR(1): relative standard error of the variance is
    # sqrt(2 (1+φ²) / ((1-φ²) N)) = 0.0028, so of the sd about half: 0.0014. Tolerance 5x.
    rel_se = 0.5 * math.sqrt(2 * (1 + phi**2) / ((1 - phi**2) * big_n))
    assert abs(x.std() / sd - 1) < 5 * rel_se
    # Lag-1 autocorrelation: standard error sqrt((1-φ²)/N) = 5.6e-4; tolerance 10x.
    r1 = float((x[:, 1:] * x[:, :-1]).mean() / (x * x).mean())
    assert abs(r1 - phi) < 10 * math.sqrt((1 - phi**2) / big_n)
    # Stationary from the first sample: the sd across VMs at t=0 and at the end is sd too
    # (relative standard error 1/sqrt(2n) = 0.011 each; tolerance 5x).
    for column in (0, -1):
        assert abs(x[:, column].std() / sd - 1) < 5 / math.sqrt(2 * n)


def test_white_noise_when_uncorrelated():
    x = generate_synthetic(SyntheticSpec(mean=0.5, noise_sd=0.05), 2000, DAY, STEP, rng(2)).cpu
    x = x.astype(np.float64) - 0.5
    r1 = float((x[:, 1:] * x[:, :-1]).mean() / (x * x).mean())
    assert abs(r1) < 5 / math.sqrt(x.size)  # standard error 1/sqrt(N)


class _Scripted:
    """A stand-in generator returning chosen burst counts and start times."""

    def __init__(self, counts, starts):
        self.counts, self.starts = np.asarray(counts), np.asarray(starts, dtype=float)

    def poisson(self, lam, size):
        return self.counts

    def uniform(self, low, high, size):
        assert len(self.starts) == size
        return self.starts


def test_bursts_are_averaged_exactly_over_samples():
    # step 300 s, 4 samples, bursts of 450 s and height 0.5.
    # VM 0: bursts at 150 s ([150, 600)) and 300 s ([300, 750)), overlapping:
    #   sample 0 [0, 300): 150/300 = 0.5; sample 1: 1 + 1 = 2; sample 2 [600, 900): 150/300 = 0.5.
    # VM 1: a burst at -300 s (started before 0, [−300, 150)) and one at 1000 s ([1000, 1450)):
    #   sample 0: 0.5; sample 3 [900, 1200): 200/300 = 2/3 (the rest is past the end).
    spec = SyntheticSpec(burst_rate_per_s=1.0, burst_height=0.5, burst_duration_s=450.0)
    added = _bursts(spec, 2, 4, 300.0, _Scripted([2, 2], [150.0, 300.0, -300.0, 1000.0]))
    expected = 0.5 * np.array([[0.5, 2.0, 0.5, 0.0], [0.5, 0.0, 0.0, 2 / 3]])
    np.testing.assert_allclose(added.T, expected, atol=1e-6)


def test_bursts_raise_the_mean_by_rate_duration_height():
    # A stationary burst process covers a fraction rate x duration of the time (overlaps add), so
    # the mean rises by λ d h = (1/3600) 600 0.3 = 0.05. Per VM about λ(D+d) = 24 bursts each
    # worth h d / D = 0.0021 of the mean: per-VM sd sqrt(24) 0.0021 = 0.010, over 4000 VMs
    # 1.6e-4. Tolerance 5x. Exceeding 1 needs three overlapping bursts: negligible clipping.
    lam, d, h, n = 1 / 3600, 600.0, 0.3, 4000
    spec = SyntheticSpec(mean=0.2, burst_rate_per_s=lam, burst_height=h, burst_duration_s=d)
    table = generate_synthetic(spec, n, DAY, STEP, rng(4))
    per_vm_sd = math.sqrt(lam * (DAY + d)) * h * d / DAY
    assert abs(
        float(table.cpu.mean(dtype=np.float64)) - (0.2 + lam * d * h)
    ) < 5 * per_vm_sd / math.sqrt(n)
    assert table.cpu.min() == np.float64(0.2)  # bursts only add


def test_poisson_arrivals():
    # Gaps ~ Exp(mean 60 s): the mean of n = 20000 gaps has sd 60/sqrt(n) = 0.42 s; the gaps'
    # coefficient of variation is 1 with standard error sqrt(8/n)/2 = 0.01. Tolerances 5x.
    n, mean_gap = 20000, 60.0
    spec = SyntheticSpec(arrival_rate_per_s=1 / mean_gap)
    table = generate_synthetic(spec, n, 3600.0, STEP, rng(9))
    start = table.start_s
    assert start[0] > 0 and (np.diff(start) > 0).all()
    gaps = np.diff(np.concatenate([[0.0], start]))
    assert abs(gaps.mean() - mean_gap) < 5 * mean_gap / math.sqrt(n)
    assert abs(gaps.std() / gaps.mean() - 1) < 5 * 0.5 * math.sqrt(8 / n)
    assert np.isinf(table.lifetime_s).all()


def test_demand_is_zero_outside_a_vm_stay():
    spec = SyntheticSpec(
        mean=0.3, arrival_rate_per_s=1 / 3000, lifetime_mean_s=4000.0, lifetime_distribution="fixed"
    )
    table = generate_synthetic(spec, 20, DAY, STEP, rng(1))
    times = np.arange(table.n_samples) * STEP
    for i in range(table.n_series):
        start, end = table.start_s[i], table.start_s[i] + table.lifetime_s[i]
        overlaps = (times + STEP > start) & (times < end)
        np.testing.assert_array_equal(table.cpu[i] > 0, overlaps)
        assert (table.cpu[i][overlaps] == np.float64(0.3)).all()


@pytest.mark.parametrize(
    ("distribution", "sd_factor"),
    # Standard deviation of one lifetime over its mean: 1 for the exponential,
    # sqrt(e^(σ²) - 1) = 1.31 for the lognormal with σ = 1.
    [("exponential", 1.0), ("lognormal", math.sqrt(math.e - 1))],
    ids=["exponential", "lognormal"],
)
def test_lifetime_mean(distribution, sd_factor):
    n, mean = 20000, 3600.0
    spec = SyntheticSpec(lifetime_mean_s=mean, lifetime_distribution=distribution)
    life = generate_synthetic(spec, n, DAY, STEP, rng(13)).lifetime_s
    assert (life > 0).all()
    assert abs(life.mean() - mean) < 5 * sd_factor * mean / math.sqrt(n)
    if distribution == "lognormal":  # sd of log lifetimes is σ, standard error σ/sqrt(2n)
        assert abs(np.log(life).std() - 1.0) < 5 / math.sqrt(2 * n)


def test_fixed_lifetime_ends_the_demand():
    spec = SyntheticSpec(mean=0.3, lifetime_mean_s=3000.0, lifetime_distribution="fixed")
    table = generate_synthetic(spec, 5, DAY, STEP, rng())
    assert (table.lifetime_s == 3000.0).all()
    assert (table.cpu[:, :10] == np.float64(0.3)).all() and (table.cpu[:, 10:] == 0).all()


def test_values_are_clipped_to_the_unit_interval():
    spec = SyntheticSpec(
        mean=0.9,
        mean_spread=1.0,
        diurnal_amplitude=1.0,
        noise_sd=0.5,
        burst_rate_per_s=1e-3,
        burst_height=1.0,
        burst_duration_s=900.0,
    )
    cpu = generate_synthetic(spec, 500, DAY, STEP, rng(6)).cpu
    assert cpu.min() == 0.0 and cpu.max() == 1.0
    assert np.isfinite(cpu).all()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mean", 1.5),
        ("mean", -0.1),
        ("mean", math.nan),
        ("mean_spread", 1.2),
        ("diurnal_amplitude", -0.5),
        ("peak_time_s", math.inf),
        ("noise_sd", -0.01),
        ("noise_corr", 1.0),
        ("noise_corr", -0.2),
        ("burst_rate_per_s", -1.0),
        ("burst_height", 2.0),
        ("burst_duration_s", math.inf),
        ("arrival_rate_per_s", -0.1),
        ("lifetime_mean_s", 0.0),
        ("lifetime_distribution", "weibull"),
        ("lifetime_sigma", -1.0),
    ],
)
def test_spec_validation(field, value):
    with pytest.raises(ValueError, match=f"SyntheticSpec.{field} "):
        SyntheticSpec(**{field: value})


@pytest.mark.parametrize(
    ("n", "duration_s", "step_s", "word"),
    [
        (-1, DAY, STEP, "n must"),
        (1, 0.0, STEP, "duration_s"),
        (1, DAY, 0.0, "step_s"),
        (1, math.inf, STEP, "duration_s"),
    ],
)
def test_generate_argument_validation(n, duration_s, step_s, word):
    with pytest.raises(ValueError, match=word):
        generate_synthetic(SyntheticSpec(), n, duration_s, step_s, rng())
