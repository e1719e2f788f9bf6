"""A detector asked about one host (``one``) decides exactly as over an array of hosts."""

from __future__ import annotations

import numpy as np
import pytest

from vsim.policies.overload import OVERLOAD_DETECTORS, make_overload_detector


@pytest.mark.parametrize("name", sorted(OVERLOAD_DETECTORS))
def test_one_host_at_a_time_agrees_with_the_array_form(name: str) -> None:
    detector = make_overload_detector(name)
    rng = np.random.default_rng(7)
    hosts, width = 400, 30
    # Values on a coarse grid make ties and thresholds hit exactly, where rounding would show.
    history = np.round(rng.random((hosts, width)) * 20) / 20
    n_valid = rng.integers(0, width + 1, hosts)
    util = np.round(rng.random(hosts) * 24) / 20
    together = detector(util, history, n_valid)
    alone = [detector.one(float(util[h]), history[h, width - n_valid[h]:].tolist())
             for h in range(hosts)]
    assert together.tolist() == alone
    assert 0 < together.sum() < hosts  # both outcomes occur, so the comparison means something
