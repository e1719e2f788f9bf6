# cython: boundscheck=False, wraparound=False, cdivision=True
"""Max-min fair rates by progressive filling, as a scalar loop that Cython compiles.

The same passes and the same arithmetic as :func:`vsim.model.network.max_min_rates` (which
documents them), so the results agree to the last bit; per pass, one walk over the flows' links
instead of a dozen array operations with their temporaries.
"""

from __future__ import annotations

import math

import numpy as np

INF = math.inf
LEVEL_SLACK = 1.0 + 1e-12  # a link is a bottleneck at its flows' level, give or take rounding


def max_min(paths, caps, capacity):
    """Rates of the flows of ``paths`` (one row of link ids per flow, -1 pads) under their own
    ``caps`` and the links' ``capacity``."""
    return max_min_rows(paths, paths[:0, 0], paths.shape[1], caps, capacity)


def max_min_rows(paths, rows, width, caps, capacity):
    """:func:`max_min` for the flows whose links are the first ``width`` of the rows ``rows`` of
    ``paths`` (all rows, in order, when ``rows`` is empty): no copy of their paths is made."""
    n_f = caps.shape[0]
    every = rows.shape[0] == 0
    n_l = capacity.shape[0]
    rates_o = np.zeros(n_f)
    rates = rates_o
    left_o = np.array(capacity, dtype=float)
    left = left_o
    count_o = np.zeros(n_l, dtype=np.int64)
    count = count_o
    share_o = np.empty(n_l)
    share = share_o
    floor_o = np.empty(n_l)
    floor = floor_o
    given_o = np.zeros(n_l)
    given = given_o
    path_min_o = np.empty(n_f)
    path_min = path_min_o
    state_o = np.ones(n_f, dtype=np.int8)  # 1: active, 2: frozen in this pass, 0: done
    state = state_o
    n_active = n_f
    while n_active > 0:
        for link in range(n_l):
            count[link] = 0
            floor[link] = INF
            given[link] = 0.0
        for f in range(n_f):
            if state[f] == 1:
                r = f if every else rows[f]
                for k in range(width):
                    link = paths[r, k]
                    if link >= 0:
                        count[link] += 1
        for link in range(n_l):
            if count[link] > 0:
                x = left[link] if left[link] > 0.0 else 0.0
                share[link] = x / count[link]
            else:
                share[link] = INF
        for f in range(n_f):
            if state[f] == 1:
                r = f if every else rows[f]
                m = INF
                for k in range(width):
                    link = paths[r, k]
                    if link >= 0 and share[link] < m:
                        m = share[link]
                path_min[f] = m
                level = caps[f] if caps[f] < m else m
                for k in range(width):
                    link = paths[r, k]
                    if link >= 0 and level < floor[link]:
                        floor[link] = level
        frozen = 0
        for f in range(n_f):
            if state[f] == 1:
                hit = caps[f] <= path_min[f]
                if not hit:
                    r = f if every else rows[f]
                    for k in range(width):
                        link = paths[r, k]
                        if link >= 0 and share[link] <= floor[link] * LEVEL_SLACK:
                            hit = True
                            break
                if hit:
                    state[f] = 2
                    frozen += 1
        if frozen == 0:  # only flows with neither a cap nor a limited link remain
            for f in range(n_f):
                if state[f] == 1:
                    rates[f] = INF
            break
        for f in range(n_f):
            if state[f] == 2:
                m = path_min[f]
                level = caps[f] if caps[f] < m else m
                rates[f] = level
                if level < INF:
                    r = f if every else rows[f]
                    for k in range(width):
                        link = paths[r, k]
                        if link >= 0:
                            given[link] += level
                state[f] = 0
        for link in range(n_l):
            left[link] -= given[link]
        n_active -= frozen
    return rates_o
