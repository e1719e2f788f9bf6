"""What the links carry: the VMs' own traffic beside migrations and replication.

Every VM with vNIC traffic sends and receives over its host's NIC and its site's fabric; traffic
marked external also crosses the site's uplink (to its users, or another site). Migrations and
replication run at the rates their own models give them (:mod:`vsim.model.migration`, which
already lets the VMs' traffic compete on the NICs it uses, and :mod:`vsim.model.replication`); the
VMs' traffic shares what they leave, max-min fairly, each flow capped at its demand. What a VM
wants to send and cannot is its unserved traffic: dropped or delayed, as TCP would make it.

Rates are recomputed whenever the simulation recomputes its rates (what runs where, the demand
the traffic follows, migrations and replication moving on) and integrated between, so a link's
carried bytes in a period are exact for the model, not sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vsim.model.datacenter import VmState
from vsim.model.interfaces import RateSeries
from vsim.model.network import Links, link_load, max_min_rates

if TYPE_CHECKING:
    from vsim.model.simulation import Simulation

__all__ = ["LinkLoad", "TrafficSetup"]


@dataclass
class TrafficSetup:
    """Each VM's traffic each way (bytes/s at 100 % CPU demand when it follows the CPU): what
    stays in the site, and what leaves it over the uplink."""

    internal: np.ndarray
    external: np.ndarray
    follows_cpu: np.ndarray  # bool
    # Traffic from traces (stays in the site), each direction: added to the above.
    sent: list[RateSeries] = field(default_factory=list)
    received: list[RateSeries] = field(default_factory=list)


class LinkLoad:
    """Time-weighted link loads and VM traffic of one simulation."""

    def __init__(self, sim: Simulation, setup: TrafficSetup, links: Links) -> None:
        self.sim, self.s, self.links = sim, setup, links
        n_l, n_v = len(links.capacity), len(setup.internal)
        self.limited = np.flatnonzero(np.isfinite(links.capacity))
        self.anchor = 0.0
        # Rates now (by link, and by VM) and the period's integrals.
        self.r_vm_link = np.zeros(n_l)
        self.r_mig = np.zeros(n_l)
        self.r_rep = np.zeros(n_l)
        self.r_demand = np.zeros(n_v)  # both ways
        self.r_sent: np.ndarray = np.zeros(n_v)
        self.p = {k: np.zeros(n_l) for k in ("vm", "migration", "replication")}
        self.demand_b = np.zeros(n_v)  # whole run, bytes
        self.sent_b = np.zeros(n_v)
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in _COLUMNS}
        self.peak = np.zeros(n_l)
        self.trace_tx = np.zeros(n_v)  # bytes/s now, from the traces
        self.trace_rx = np.zeros(n_v)
        self._limited = np.append(np.isfinite(links.capacity), False)  # [-1]: padding
        self._key: tuple[np.ndarray, ...] | None = None  # the inputs of the last solve

    def on_sample(self, series: RateSeries, k: int, sending: bool) -> None:
        """A trace's traffic moved on to sample ``k`` (the rates are set at the next update)."""
        (self.trace_tx if sending else self.trace_rx)[series.vms] = series.row(k)

    def _advance(self, now: float) -> None:
        dt = now - self.anchor
        if dt > 0:
            self.p["vm"] += self.r_vm_link * dt
            self.p["migration"] += self.r_mig * dt
            self.p["replication"] += self.r_rep * dt
            self.demand_b += self.r_demand * dt
            self.sent_b += self.r_sent * dt
        self.anchor = now

    def update(self) -> None:
        """Bring the integrals to now and set the rates for the state as it is now."""
        sim = self.sim
        self._advance(sim.engine.now)
        links, cap = self.links, self.links.capacity
        self.r_mig = sim.fabric.link_bytes_s()
        if sim.moves is not None:
            self.r_mig = self.r_mig + sim.moves.link_bytes_s()  # their disk copies
        rep = sim.avail.replication if sim.avail is not None else None
        self.r_rep = rep.link_bytes_s() if rep is not None else np.zeros(len(cap))
        v = sim.dc.vms
        on = (v.state == VmState.RUNNING) | (v.state == VmState.MIGRATING)
        if sim.storage is not None:
            on &= ~sim.storage.paused
        scale = np.where(self.s.follows_cpu, np.divide(
            sim.demand_hz, v.capacity_hz, out=np.zeros(len(v)), where=v.capacity_hz > 0), 1.0)
        internal = np.where(on, self.s.internal * scale, 0.0)
        external = np.where(on, self.s.external * scale, 0.0)
        host = sim._exec_host  # where each VM runs now (a post-copy VM: its destination)
        left = np.maximum(cap - self.r_mig - self.r_rep, 0.0)
        # Most recomputes change the VMs' CPU, not their traffic: then the rates stand.
        key = (internal, external, np.where(on, self.trace_tx, 0.0),
               np.where(on, self.trace_rx, 0.0), host, left)
        if self._key is not None and all(np.array_equal(a, b) for a, b in zip(key, self._key,
                                                                              strict=True)):
            return
        self._key = tuple(np.array(a, copy=True) for a in key)
        flows, caps, owner = [], [], []
        for sending in (True, False):
            inside = internal + np.where(on, self.trace_tx if sending else self.trace_rx, 0.0)
            for amount, out in ((inside, False), (external, True)):
                talk = np.flatnonzero(amount > 0)
                if talk.size == 0:
                    continue
                h = host[talk].astype(np.int64)
                site = links.host_site[h]
                p = np.full((talk.size, 3), -1, dtype=np.int64)
                p[:, 0] = links.tx(h) if sending else links.rx(h)
                p[:, 1] = 2 * links.n_hosts + site
                if out:
                    base = 2 * links.n_hosts + (1 if sending else 2) * links.n_sites
                    p[:, 2] = base + site
                # Unlimited links constrain nothing: leaving them out keeps the solve small.
                flows.append(np.where(self._limited[p], p, -1))
                caps.append(amount[talk])
                owner.append(talk)
        self.r_demand = 2 * (internal + external) + np.where(on, self.trace_tx + self.trace_rx, 0.0)
        self.r_sent = np.zeros(len(v))
        self.r_vm_link = np.zeros(len(cap))
        if flows:
            paths = np.vstack(flows)
            demand = np.concatenate(caps)
            rates = max_min_rates(paths, demand, left)
            rates = np.minimum(rates, demand)
            self.r_sent = np.bincount(np.concatenate(owner), weights=rates, minlength=len(v))
            self.r_vm_link = link_load(paths, rates, len(cap))
        used = self.r_vm_link + self.r_mig + self.r_rep
        self.peak = np.maximum(self.peak, np.divide(used, cap, out=np.zeros(len(cap)),
                                                    where=np.isfinite(cap) & (cap > 0)))

    def period(self, start: float, end: float) -> None:
        self._advance(end)
        dt = max(end - start, 1e-9)
        ids = self.limited
        cap = self.links.capacity[ids]
        total = sum(self.p[k][ids] for k in self.p)
        for k, col in (("time_s", np.full(ids.size, start)), ("link", ids),
                       ("capacity_bytes_s", cap), ("carried_bytes_s", total / dt),
                       ("utilisation", total / dt / cap),
                       ("vm_bytes_s", self.p["vm"][ids] / dt),
                       ("migration_bytes_s", self.p["migration"][ids] / dt),
                       ("replication_bytes_s", self.p["replication"][ids] / dt)):
            self.rows[k].append(np.asarray(col))
        for k in self.p:
            self.p[k][:] = 0.0

    def finish(self, end: float) -> dict[str, Any]:
        self._advance(end)
        links = self.links
        return {"links": {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.rows.items()},
                "link_names": link_names(links, self.sim.dc.hosts.name, self.sim.dc.site_names),
                "peak_utilisation": self.peak[self.limited], "limited": self.limited,
                "vm_demand_bytes": self.demand_b.copy(), "vm_sent_bytes": self.sent_b.copy()}


def link_names(links: Links, hosts: list[str], sites: list[str]) -> list[str]:
    """A name for every link id (see :class:`Links`)."""
    sites = list(sites) + [f"site-{s}" for s in range(len(sites), links.n_sites)]
    return ([f"{h}/nic-out" for h in hosts] + [f"{h}/nic-in" for h in hosts]
            + [f"{s}/fabric" for s in sites[:links.n_sites]]
            + [f"{s}/uplink-out" for s in sites[:links.n_sites]]
            + [f"{s}/uplink-in" for s in sites[:links.n_sites]])


_COLUMNS = ("time_s", "link", "capacity_bytes_s", "carried_bytes_s", "utilisation", "vm_bytes_s",
            "migration_bytes_s", "replication_bytes_s")
