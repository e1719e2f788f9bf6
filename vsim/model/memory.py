"""Memory pressure: what swapping costs a VM whose working set does not fit in the memory it may
keep resident.

A VM touches its working set of W bytes page by page; R bytes of it may stay resident (its memory
limit less the hypervisor's and the guest kernel's own). Each touch of a resident page costs
``t_hit``; a touch of a swapped-out page costs a fault besides, ``t_fault`` (swap one page out to
make room, read the page in). With uniformly random touches and any replacement policy that keeps
R bytes resident, a touch hits with probability R / W; with touches in a cycle over the working set
and a least-recently-used replacement, every touch misses once W > R (the page needed next is
always the one evicted longest ago). The slowdown is the time per touch over ``t_hit``:

    random:     1 + (1 - min(1, R / W)) * t_fault / t_hit
    sequential: 1 + t_fault / t_hit  if W > R, else 1

This is the memory model's first piece; page sharing and ballooning build on the same resident
set.
"""

from __future__ import annotations

import numpy as np

__all__ = ["swap_slowdown"]


def swap_slowdown(ratio: np.ndarray | float, t_hit_s: np.ndarray | float,
                  t_fault_s: np.ndarray | float, order: str = "random") -> np.ndarray:
    """Slowdown of touching a working set ``ratio`` times the resident memory (W / R)."""
    ratio = np.asarray(ratio, dtype=float)
    cost = np.asarray(t_fault_s, dtype=float) / np.asarray(t_hit_s, dtype=float)
    if order == "random":
        miss = 1.0 - np.minimum(1.0, 1.0 / ratio)
    elif order == "sequential":
        miss = (ratio > 1.0).astype(float)
    else:
        raise ValueError(f"order is random or sequential, got {order!r}")
    return 1.0 + miss * cost
