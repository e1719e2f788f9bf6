"""VMs booting after a restart, and why many at once boot slowly (boot storms).

A boot reads the guest's boot image (kernel, services, their libraries: some hundreds of MB) from
its datastore and then initialises for a while. The reads of every VM booting at once share the
host's storage path and the site's datastore, max-min fairly like any flows on links
(:func:`vsim.model.network.max_min_rates`), each also limited by how fast one guest reads. So one
VM boots in ``io / read_rate + init``, and a hundred restarted together on one datastore take as
long as the datastore needs to serve them all: a boot storm, as HA restarts and disaster-recovery
failovers (and VDI logins) see it.

Rates change only when a boot starts or finishes its reads; in between every boot progresses at a
constant rate, so the next completion is known and the state is kept as of an anchor time.
"""

from __future__ import annotations

import math

import numpy as np

from vsim.model.network import max_min_rates

__all__ = ["Boots"]

_NONE, _READING, _INIT = 0, 1, 2
_EPS_S = 1e-9


class Boots:
    """Boots in progress. Links: host ``h``'s storage path is ``h``, site ``s``'s datastore
    ``H + s`` (``inf``: unlimited). Per VM: bytes read to boot, its own read rate limit, and the
    time it initialises after reading."""

    def __init__(self, host_storage: np.ndarray, site_storage: np.ndarray, host_site: np.ndarray,
                 io_bytes: np.ndarray, read_rate: np.ndarray, init_s: np.ndarray) -> None:
        self.n_hosts = len(host_storage)
        self.capacity = np.concatenate([host_storage, site_storage]).astype(float)
        self.host_site = np.asarray(host_site, dtype=np.int64)
        self.io = np.asarray(io_bytes, dtype=float)
        self.cap = np.asarray(read_rate, dtype=float)
        self.init = np.asarray(init_s, dtype=float)
        n = len(self.io)
        self.phase = np.zeros(n, dtype=np.uint8)
        self.host = np.full(n, -1, dtype=np.int64)
        self.left = np.zeros(n)  # bytes while reading, seconds while initialising
        self.rate = np.zeros(n)
        self.anchor = np.zeros(n)
        self.began = np.full(n, np.nan)
        self._changed = False

    @property
    def active(self) -> np.ndarray:
        return np.flatnonzero(self.phase != _NONE)

    def start(self, vms: np.ndarray, hosts: np.ndarray, now: float) -> None:
        vms = np.asarray(vms, dtype=np.int64)
        self._catch_up(now)
        self.host[vms] = hosts
        self.began[vms] = now
        self.anchor[vms] = now
        reads = self.io[vms] > 0
        self.phase[vms] = np.where(reads, _READING, _INIT)
        self.left[vms] = np.where(reads, self.io[vms], self.init[vms])
        self.rate[vms] = np.where(reads, 0.0, 1.0)
        self._changed = True

    def cancel(self, vms: np.ndarray, now: float) -> None:
        """The boots of ``vms`` stop (their host failed, or they left)."""
        vms = np.asarray(vms, dtype=np.int64)
        vms = vms[self.phase[vms] != _NONE]
        if vms.size:
            self._catch_up(now)
            self.phase[vms] = _NONE
            self.rate[vms] = 0.0
            self._changed = True

    def _catch_up(self, now: float) -> None:
        ids = self.active
        self.left[ids] = np.maximum(self.left[ids] - self.rate[ids] * (now - self.anchor[ids]), 0.0)
        self.anchor[ids] = now

    def _rates(self) -> None:
        reading = np.flatnonzero(self.phase == _READING)
        if reading.size:
            host = self.host[reading]
            paths = np.stack([host, self.n_hosts + self.host_site[host]], axis=1)
            paths = np.where(np.isfinite(self.capacity[paths]), paths, -1)
            self.rate[reading] = max_min_rates(paths, self.cap[reading], self.capacity)
        self._changed = False

    def next_event_at(self) -> float:
        if self._changed:
            self._rates()
        ids = self.active
        if ids.size == 0:
            return math.inf
        with np.errstate(divide="ignore"):
            due = self.anchor[ids] + np.where(self.rate[ids] > 0, self.left[ids] / self.rate[ids],
                                              np.where(self.left[ids] > 0, math.inf, 0.0))
        return float(due.min())

    def fire(self, now: float) -> np.ndarray:
        """Move the boots due now on; returns the VMs that finished booting."""
        if self._changed:
            self._rates()
        self._catch_up(now)
        ids = self.active
        tol = max(_EPS_S, 1e-12 * now)
        due = ids[(self.left[ids] <= self.rate[ids] * tol) | (self.left[ids] <= 0)]
        read = due[self.phase[due] == _READING]
        if read.size:
            self.phase[read] = _INIT
            self.left[read] = self.init[read]
            self.rate[read] = 1.0
            self._changed = True
        done = due[(self.phase[due] == _INIT) & (self.left[due] <= tol)]
        self.phase[done] = _NONE
        self.rate[done] = 0.0
        return done
