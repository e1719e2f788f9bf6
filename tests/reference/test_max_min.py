"""Max-min fair sharing: a worked example and the defining property on random networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsim.model.network import max_min_rates


def test_the_textbook_example() -> None:
    # Links A (capacity 10) and B (capacity 4). Flow 0 crosses A and B, flow 1 only B, flows 2
    # and 3 only A. B is the tightest: flows 0 and 1 get 4 / 2 = 2 each. A has 10 - 2 = 8 left
    # for flows 2 and 3: 4 each. Flow 3 is capped at 1, so flow 2 takes 10 - 2 - 1 = 7.
    paths = np.array([[0, 1], [1, -1], [0, -1], [0, -1]])
    rates = max_min_rates(paths, np.array([math.inf, math.inf, math.inf, 1.0]), np.array([10.0, 4.0]))
    assert rates.tolist() == pytest.approx([2.0, 2.0, 7.0, 1.0])


def test_unlimited_flows_on_unlimited_links_are_unlimited() -> None:
    rates = max_min_rates(np.array([[0], [1]]), np.array([math.inf, 3.0]), np.array([math.inf, 5.0]))
    assert rates.tolist() == [math.inf, 3.0]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_flow_is_capped_or_has_a_saturated_link_where_it_is_largest(data: st.DataObject) -> None:
    n_links = data.draw(st.integers(1, 6))
    n_flows = data.draw(st.integers(1, 12))
    capacity = np.array(data.draw(st.lists(st.floats(0.5, 100.0), min_size=n_links, max_size=n_links)))
    paths = np.full((n_flows, 3), -1)
    for f in range(n_flows):
        links = data.draw(st.lists(st.integers(0, n_links - 1), min_size=1, max_size=3, unique=True))
        paths[f, :len(links)] = links
    caps = np.array(data.draw(st.lists(st.one_of(st.just(math.inf), st.floats(0.1, 50.0)),
                                       min_size=n_flows, max_size=n_flows)))
    rates = max_min_rates(paths, caps, capacity)
    load = np.zeros(n_links)
    for f in range(n_flows):
        for link in paths[f][paths[f] >= 0]:
            load[link] += rates[f]
    assert np.all(load <= capacity * (1 + 1e-9)), "no link carries more than its capacity"
    assert np.all(rates <= caps * (1 + 1e-9))
    # Max-min fair: a flow below its cap has a bottleneck, a full link on which no flow is faster.
    for f in range(n_flows):
        if rates[f] >= caps[f] * (1 - 1e-9):
            continue
        links = paths[f][paths[f] >= 0]
        assert any(
            load[link] >= capacity[link] * (1 - 1e-9)
            and all(rates[g] <= rates[f] * (1 + 1e-9) for g in range(n_flows) if link in paths[g])
            for link in links
        ), f"flow {f} at {rates[f]} has no bottleneck"
