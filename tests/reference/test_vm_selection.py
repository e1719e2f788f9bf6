"""VM selection (MMT, MU, RS, MC) for one overloaded host, against choices worked out by hand.

Beloglazov & Buyya, CCPE 2012, §5, as CloudSim 3.0.3 implements them
(shared/reference/cloudsim-planetlab.md). Candidates are in the host's VM-list order; histories
are oldest first and right-aligned.
"""

from __future__ import annotations

import numpy as np
import pytest

from vsim.policies.selection import (
    VM_SELECTION_POLICIES,
    correlation_r2,
    make_vm_selection,
)

GIB = 1024.0**3
W = 30


def choose(name: str, ram_gib: list[float], util: list[float] | None = None,
           history: np.ndarray | None = None, n_valid: np.ndarray | None = None,
           seed: int = 0) -> int:
    k = len(ram_gib)
    if history is None:
        history = np.zeros((k, W))
        n_valid = np.zeros(k, dtype=int)
    util = [0.5] * k if util is None else util
    policy = make_vm_selection(name, np.random.default_rng(seed))
    return policy(np.array(ram_gib) * GIB, np.array(util), history, n_valid)


# --- MMT and MU ----------------------------------------------------------------------------------


def test_mmt_least_ram_first_on_ties() -> None:
    # RAM 2, 1, 4, 1 GiB: the least is 1 GiB, held by VMs 1 and 3; the first of them wins.
    assert choose("mmt", [2, 1, 4, 1]) == 1
    # CloudSim's PlanetLab VM types (870, 1740, 1740, 613 MB): the 613 MB VM (migrates in 9.81 s).
    assert choose("mmt", [870 / 1024, 1740 / 1024, 1740 / 1024, 613 / 1024]) == 3


def test_mu_least_utilisation_first_on_ties() -> None:
    # Utilisation 0.5, 0.2, 0.2, 0.9: VMs 1 and 3 tie at 0.2, VM 1 wins; RAM plays no part.
    assert choose("mu", [1, 8, 2, 1], util=[0.5, 0.2, 0.2, 0.9]) == 1
    assert choose("mu", [1, 1, 1], util=[0.3, 0.25, 0.0]) == 2


def test_a_single_candidate_is_always_chosen() -> None:
    for name in VM_SELECTION_POLICIES:
        assert choose(name, [2.0]) == 0


def test_no_candidates_is_an_error() -> None:
    for name in VM_SELECTION_POLICIES:
        with pytest.raises(ValueError, match="at least one candidate"):
            choose(name, [])


# --- RS ------------------------------------------------------------------------------------------


def test_rs_is_repeatable_with_a_seeded_generator() -> None:
    ram = np.full(5, GIB)
    draws = []
    for _ in range(2):
        policy = make_vm_selection("rs", np.random.default_rng(2024))
        draws.append([policy(ram, np.zeros(5), np.zeros((5, W)), np.zeros(5, int))
                      for _ in range(50)])
    assert draws[0] == draws[1]
    other = make_vm_selection("rs", np.random.default_rng(2025))
    assert [other(ram, np.zeros(5), np.zeros((5, W)), np.zeros(5, int))
            for _ in range(50)] != draws[0]


def test_rs_covers_every_candidate_uniformly() -> None:
    # 4000 draws among 4 VMs: each expected 1000 times, sd sqrt(4000 * 1/4 * 3/4) ~ 27; allow 5 sd.
    policy = make_vm_selection("rs", np.random.default_rng(1))
    ram = np.full(4, GIB)
    counts = np.bincount([policy(ram, np.zeros(4), np.zeros((4, W)), np.zeros(4, int))
                          for _ in range(4000)], minlength=4)
    assert counts.sum() == 4000 and np.all(np.abs(counts - 1000) < 5 * 27.4)


# --- MC ------------------------------------------------------------------------------------------


def linear_combination_host(rng: np.random.Generator) -> np.ndarray:
    """Six VMs over 30 samples: three independent noise VMs (0-2); VM 3 = 0.1 + 0.5 x + 0.3 z
    exactly, where x and z are VMs 4 and 5 (independent noise)."""
    noise = rng.uniform(0.1, 0.6, size=(5, W))
    combo = 0.1 + 0.5 * noise[3] + 0.3 * noise[4]
    return np.vstack([noise[:3], combo, noise[3:]])


def test_mc_picks_the_vm_the_others_explain_exactly() -> None:
    history = linear_combination_host(np.random.default_rng(5))
    n_valid = np.full(6, W)
    r2 = correlation_r2(history, n_valid)
    # VM 3 is an exact linear combination of VMs 4 and 5, so R² = 1; so are 4 and 5 of 3 and each
    # other (x = (VM3 - 0.1 - 0.3 z) / 0.5). The noise VMs are explained only by chance.
    assert r2[3:] == pytest.approx(1.0, abs=1e-9)
    assert np.all(r2[:3] < 0.6)
    # The three exact ones tie (within 1e-9), and the first of them in list order wins: VM 3.
    assert choose("mc", [1] * 6, history=history, n_valid=n_valid) == 3


def test_mc_r2_is_the_squared_multiple_correlation() -> None:
    # For centred data with cross-product matrix C = Z^T Z (Z: m x k, one column per VM), the R² of
    # VM i on all the others is 1 - 1 / (C_ii (C^-1)_ii), a formula independent of the fits.
    rng = np.random.default_rng(11)
    base = rng.uniform(0.2, 0.5, size=W)
    history = np.vstack([base + rng.normal(0, s, size=W) for s in (0.3, 0.02, 0.1, 0.05, 0.2)])
    n_valid = np.full(5, W)
    z = (history - history.mean(axis=1, keepdims=True)).T
    c = z.T @ z
    expected = 1 - 1 / (np.diag(c) * np.diag(np.linalg.inv(c)))
    r2 = correlation_r2(history, n_valid)
    assert r2 == pytest.approx(expected, abs=1e-10)
    # MC takes the largest, which here is clear of the runner-up.
    best, second = np.sort(expected)[::-1][:2]
    assert best - second > 1e-3
    assert choose("mc", [1] * 5, history=history, n_valid=n_valid) == int(np.argmax(expected))


def test_mc_uses_the_last_values_common_to_all_vms() -> None:
    # n_valid 30, 15, 20: m = 15, so only the last 15 columns count; what lies further left (the
    # NaN padding of VM 1, and older real values of VMs 0 and 2) changes nothing.
    rng = np.random.default_rng(4)
    history = rng.uniform(0.1, 0.9, size=(3, W))
    history[1, :W - 15] = np.nan
    r2 = correlation_r2(history, np.array([30, 15, 20]))
    trimmed = correlation_r2(history[:, -15:], np.array([15, 15, 15]))
    assert np.all(np.isfinite(r2))
    assert r2 == pytest.approx(trimmed, abs=1e-12)


def test_mc_falls_back_to_mmt_without_enough_history() -> None:
    # 4 VMs need m > 4 values (4 parameters: an intercept and 3 regressors, plus one degree of
    # freedom); with m = 4 every R² is undefined and MMT picks the least RAM: VM 2 (0.5 GiB).
    rng = np.random.default_rng(9)
    history = rng.uniform(0.1, 0.9, size=(4, W))
    ram = [2, 1, 0.5, 4]
    n_valid = np.array([30, 4, 12, 30])
    assert np.all(np.isnan(correlation_r2(history, n_valid)))
    assert choose("mc", ram, history=history, n_valid=n_valid) == 2
    # No history at all: the same.
    assert choose("mc", ram, history=history, n_valid=np.zeros(4, int)) == 2
    # m = 5 > 4 is enough: MC decides (not necessarily VM 2).
    assert np.all(np.isfinite(correlation_r2(history, np.array([30, 5, 12, 30]))))


def test_mc_with_constant_histories() -> None:
    # A VM flat over the window has nothing to explain (R² undefined) and is never chosen by MC;
    # when every VM is flat, MMT decides.
    flat = np.tile(np.array([[0.2], [0.5], [0.5]]), (1, W))
    assert choose("mc", [4, 1, 2], history=flat, n_valid=np.full(3, W)) == 1
    rng = np.random.default_rng(2)
    history = linear_combination_host(rng)[3:]  # VMs 0 = 0.1 + 0.5 * VM1 + 0.3 * VM2
    history = np.vstack([np.full(W, 0.3), history])  # VM 0 flat, VMs 1-3 exact
    r2 = correlation_r2(history, np.full(4, W))
    assert np.isnan(r2[0]) and r2[1:] == pytest.approx(1.0, abs=1e-9)
    assert choose("mc", [0.5, 1, 1, 1], history=history, n_valid=np.full(4, W)) == 1


def test_mc_with_collinear_regressors_stays_finite() -> None:
    # VMs 1 and 2 are identical: the regressions that include both have a singular design, which
    # lstsq handles (minimum-norm solution). VM 1 is explained perfectly by its twin, R² = 1.
    rng = np.random.default_rng(8)
    a, b = rng.uniform(0.1, 0.9, size=(2, W))
    history = np.vstack([a, b, b])
    r2 = correlation_r2(history, np.full(3, W))
    assert np.all(np.isfinite(r2)) and r2[1:] == pytest.approx(1.0, abs=1e-9)
    assert choose("mc", [1, 1, 1], history=history, n_valid=np.full(3, W)) == 1


def test_policies_do_not_modify_their_inputs() -> None:
    rng = np.random.default_rng(6)
    ram, util = rng.uniform(1, 4, size=5) * GIB, rng.random(5)
    history, n_valid = rng.random((5, W)), np.full(5, W)
    copies = ram.copy(), util.copy(), history.copy(), n_valid.copy()
    for name in VM_SELECTION_POLICIES:
        make_vm_selection(name, np.random.default_rng(0))(ram, util, history, n_valid)
    assert all(np.array_equal(a, b)
               for a, b in zip(copies, (ram, util, history, n_valid), strict=True))


# --- the registry --------------------------------------------------------------------------------


def test_unknown_policy_names_the_known_ones() -> None:
    assert sorted(VM_SELECTION_POLICIES) == ["mc", "mmt", "mu", "rs"]
    with pytest.raises(ValueError, match=r"unknown VM selection policy 'mmx'.*mc, mmt, mu, rs"):
        make_vm_selection("mmx", np.random.default_rng(0))
