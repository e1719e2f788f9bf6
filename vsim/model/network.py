"""Links and max-min fair sharing of their bandwidth among flows.

A flow crosses a few links (a host's NIC out, a site's fabric, the inter-site uplink, the other
host's NIC in) and may have a rate cap of its own (a migration's max-bandwidth, a vNIC's demand).
Max-min fairness (Bertsekas & Gallager, *Data Networks*, 2nd ed., §6.5.2) gives every flow as much
as it can get without taking from a flow that has less. It is computed by progressive filling, with
every link that is a bottleneck at the current level frozen at once, so the number of passes is the
number of distinct bottleneck levels, not the number of links or flows.
"""

from __future__ import annotations

import numpy as np

from vsim.model import kernels

__all__ = ["Links", "link_load", "max_min_rates"]


class Links:
    """Link capacities of a datacenter, in bytes/s, full duplex where it matters.

    Ids: host ``h`` sends on ``h`` and receives on ``H + h``; site ``s`` has its switching fabric
    at ``2H + s``, its uplink out at ``2H + S + s`` and in at ``2H + 2S + s``. An infinite capacity
    is a link that never limits anything."""

    def __init__(self, host_nic: np.ndarray, host_site: np.ndarray, site_fabric: np.ndarray,
                 site_uplink: np.ndarray) -> None:
        self.n_hosts = len(host_nic)
        self.n_sites = len(site_fabric)
        self.host_site = np.asarray(host_site, dtype=np.int64)
        self.capacity = np.concatenate([host_nic, host_nic, site_fabric, site_uplink, site_uplink])

    def tx(self, host: np.ndarray) -> np.ndarray:
        return np.asarray(host, dtype=np.int64)

    def rx(self, host: np.ndarray) -> np.ndarray:
        return np.asarray(host, dtype=np.int64) + self.n_hosts

    def path(self, source: np.ndarray, dest: np.ndarray) -> np.ndarray:
        """Links of host-to-host flows, one row per flow, padded with -1: the sender's NIC, the
        fabric of each site crossed and, between sites, both sites' uplinks."""
        source = np.asarray(source, dtype=np.int64)
        dest = np.asarray(dest, dtype=np.int64)
        h, s = self.n_hosts, self.n_sites
        s_src, s_dst = self.host_site[source], self.host_site[dest]
        across = s_src != s_dst
        out = np.full((len(source), 6), -1, dtype=np.int64)
        out[:, 0] = source
        out[:, 1] = h + dest
        out[:, 2] = 2 * h + s_src
        out[:, 3] = np.where(across, 2 * h + s_dst, -1)
        out[:, 4] = np.where(across, 2 * h + s + s_src, -1)
        out[:, 5] = np.where(across, 2 * h + 2 * s + s_dst, -1)
        return out

    def to_site(self, source_hosts: np.ndarray, dest_site: np.ndarray) -> np.ndarray:
        """Links of flows from hosts to a site's replication target, one row per flow, padded with
        -1 to the width of :meth:`path`: the sender's NIC, its site's fabric and, to another site,
        its site's uplink out, the target site's uplink in and the target site's fabric. The
        receiving end (a replication server or the array) is not a host NIC, so none is crossed."""
        source = np.asarray(source_hosts, dtype=np.int64)
        site = np.asarray(dest_site, dtype=np.int64)
        h, s = self.n_hosts, self.n_sites
        s_src = self.host_site[source]
        across = s_src != site
        out = np.full((len(source), 6), -1, dtype=np.int64)
        out[:, 0] = source
        out[:, 1] = 2 * h + s_src
        out[:, 2] = np.where(across, 2 * h + s + s_src, -1)
        out[:, 3] = np.where(across, 2 * h + 2 * s + site, -1)
        out[:, 4] = np.where(across, 2 * h + site, -1)
        return out


def max_min_rates(paths: np.ndarray, caps: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Max-min fair rates of flows: ``paths[f]`` lists flow f's links (-1 pads), ``caps[f]`` its
    own limit, ``capacity[l]`` each link's bandwidth (``inf`` for none).

    Each pass computes every link's fair share (capacity left over the flows not yet frozen) and
    freezes (1) flows whose cap is at most every share on their path, at their cap, and (2) all
    flows of a link whose share is the smallest on the path of each of its flows, at that share.
    Freezing a flow at or below a link's share never lowers any other link's share, so both are
    final; each pass freezes at least one flow."""
    n_f = len(caps)
    rates = np.zeros(n_f)
    if n_f == 0:
        return rates
    if kernels.COMPILED:  # the same passes, one walk over the flows' links each
        return np.asarray(kernels.max_min(np.asarray(paths, dtype=np.int64),
                                          np.asarray(caps, dtype=float),
                                          np.asarray(capacity, dtype=float)))
    n_l = len(capacity)
    valid = paths >= 0
    flat_flow = np.repeat(np.arange(n_f), paths.shape[1])[valid.ravel()]
    flat_link = paths.ravel()[valid.ravel()]
    left = np.asarray(capacity, dtype=float).copy()
    active = np.ones(n_f, dtype=bool)
    caps = np.asarray(caps, dtype=float)
    while active.any():
        live = active[flat_flow]
        fl, ll = flat_flow[live], flat_link[live]
        count = np.bincount(ll, minlength=n_l)
        share = np.full(n_l, np.inf)
        used = count > 0
        share[used] = np.maximum(left[used], 0.0) / count[used]
        # The tightest share on each active flow's path (inf for a flow on unlimited links only).
        path_min = np.full(n_f, np.inf)
        np.minimum.at(path_min, fl, share[ll])
        level = np.minimum(path_min, caps)
        # A link is a bottleneck now when no flow on it is held lower elsewhere.
        link_floor = np.full(n_l, np.inf)
        np.minimum.at(link_floor, ll, level[fl])
        bottleneck = used & (share <= link_floor * (1 + 1e-12))
        freeze = active & (caps <= path_min)
        on_bottleneck = np.zeros(n_f, dtype=bool)
        on_bottleneck[fl[bottleneck[ll]]] = True
        freeze |= active & on_bottleneck
        if not freeze.any():  # only flows with neither a cap nor a limited link remain
            rates[active] = np.inf
            break
        rates[freeze] = level[freeze]
        frozen_links = freeze[flat_flow] & active[flat_flow]
        given = rates[flat_flow[frozen_links]]
        # Unlimited links stay unlimited; a flow frozen at an infinite rate uses only those.
        left -= np.bincount(flat_link[frozen_links], weights=np.where(np.isinf(given), 0.0, given),
                            minlength=n_l)
        active &= ~freeze
    return rates


def link_load(paths: np.ndarray, rates: np.ndarray, n_links: int) -> np.ndarray:
    """What flows at ``rates`` put on every link (bytes/s by link id): ``paths[f]`` lists flow
    f's links, -1 padding."""
    valid = paths >= 0
    weights = np.broadcast_to(np.asarray(rates, dtype=float)[:, None], paths.shape)[valid]
    return np.bincount(paths[valid], weights=weights, minlength=n_links).astype(float)
