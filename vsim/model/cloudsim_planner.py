"""CloudSim 3.0.3's consolidation decisions for ``semantics: cloudsim``: its power model and its
optimizeAllocation (overload phase, PABFD, underload phase), with CloudSim's tentative vmCreate
and vmDestroy kept as arrays per host. See ``vsim.model.cloudsim_compat`` for the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vsim.model.cloudsim_compat import _Datacenter

__all__ = ["HISTORY", "Planner", "PowerTable", "power_at"]

HISTORY = 30  # PowerVm.HISTORY_LENGTH
# How close to the limit LR's linear screen may land and still decide: its rounding differs from
# the exact fit's by ~1e-15 for utilisation histories of order 1, so 1e-9 leaves a wide berth.
SCREEN_MARGIN = 1e-9
_OK, _OVER, _UNSURE = 0, 1, 2


def power_at(table: np.ndarray, h: np.ndarray | int, u: np.ndarray | float) -> np.ndarray:
    """PowerModelSpecPower.getPower as CloudSim computes it; ties between hosts hinge on its
    rounding: P = p[i] + (p[i + 1] - p[i]) / 10 * (u - i / 10) * 100 with i = floor(10 u), and a
    utilisation whose remainder by 0.1 is exactly 0 reads that table point. Utilisations are in
    [0, 1] here (CloudSim refuses others)."""
    return PowerTable(table).at(np.asarray(h), np.asarray(u, dtype=float))


class PowerTable:
    """``power_at`` for one table, with the per-segment slopes computed once.

    The remainder test needs no fmod: in [0, 1] only u = 0, 0.1, 0.2, 0.4 and 0.8 are exact
    multiples of the double 0.1 (3 x 0.1, 5 x 0.1, ... are not representable), and for each of
    them 10 u rounds to an integer, where the interpolation already returns p[i] (the slope term
    is multiplied by zero). So the slope is taken only where 10 u > i, exactly as CloudSim's
    p[i + 1] - p[i] is zero otherwise."""

    def __init__(self, table: np.ndarray) -> None:
        self.width = table.shape[1]
        self.flat = table.ravel()
        slope = np.zeros_like(table)
        slope[:, :-1] = (table[:, 1:] - table[:, :-1]) / 10
        self.slope = slope.ravel()

    def at(self, h: np.ndarray, u: np.ndarray) -> np.ndarray:
        x = u * 10
        i1 = x.astype(np.int64)  # floor, for u >= 0
        at = h * self.width + i1
        slope = np.where(x > i1, self.slope[at], 0.0)
        return self.flat[at] + slope * (u - i1 / 10) * 100


class Planner:
    """One tick's optimizeAllocation, with CloudSim's tentative vmCreate / vmDestroy as arrays."""

    def __init__(self, dc: _Datacenter) -> None:
        self.dc = dc
        s = dc.s
        assert s.detector is not None
        self.detector = s.detector
        n_h = len(dc.mips)
        on = dc.alive & (dc.host >= 0)
        pv, pt = dc.pairs()
        hosts = dc.host[on]
        weight = (dc.s.vm_mips / 1.0)
        # Per host: requests of its VM list (migrating-in included), their history, capped sums.
        self.req = np.bincount(hosts, weights=dc.request[on], minlength=n_h)
        self.req += np.bincount(pt, weights=dc.request[pv], minlength=n_h)
        self.hist = np.zeros((n_h, HISTORY))
        np.add.at(self.hist, hosts, dc.hist[on] * weight[on, None])
        np.add.at(self.hist, pt, dc.hist[pv] * weight[pv, None])
        self.hist /= dc.mips[:, None]
        self.u_res = np.bincount(hosts, weights=np.minimum(dc.request[on], s.pe_mips[hosts]),
                                 minlength=n_h)
        self.u_in = np.bincount(pt, weights=np.minimum(dc.request[pv], s.pe_mips[pt]),
                                minlength=n_h)
        self.lists = [list(v) for v in dc.vms_of]  # resident VMs, then tentative arrivals
        self.alloc = np.zeros(n_h)
        self.available = np.zeros(n_h)
        self._refresh(slice(None))
        hosts_all = np.arange(n_h)
        self.power = dc.power
        self.power_now = self.power.at(hosts_all, np.minimum(dc.u_last, 1.0))
        self.moving = dc.migrating_out()
        self.moving[pv] = True
        # LR's prediction is linear in the history, so a host's prediction with a VM added is
        # its own plus the VM's, up to rounding: find_host screens all candidates at once with
        # that and runs the exact test only where the screen is within SCREEN_MARGIN of the limit.
        self.lr_weights: np.ndarray | None = None
        linear_weights = getattr(self.detector, "linear_weights", None)
        if linear_weights is not None:
            # Histories are newest first: the last k values oldest first are columns k-1..0.
            w = self.lr_weights = np.asarray(linear_weights())[::-1].copy()
            k = len(w)
            self.lin, self.vm_lin = self.hist[:, :k] @ w, dc.hist[:, :k] @ w
            # Whether the trimmed history has k values: a nonzero value k or more back. A host's
            # with a VM added has them when either has (the values are >= 0) ...
            self.long = np.asarray(self.hist[:, k - 1:].any(axis=1))
            self.vm_long = np.asarray(dc.hist[:, k - 1:].any(axis=1))
            # ... unless a negative entry (rounding left by a VM taken off) cancels the VM's value
            # exactly: such hosts get the exact test (the flag stays up for the tick).
            self.negative = np.asarray((self.hist < 0).any(axis=1))

    # Host state as CloudSim's policy sees it --------------------------------------------

    def _trimmed(self, hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Newest-first histories -> oldest-first right-aligned, and the length after CloudSim
        trims zeros at the old end."""
        nz = hist != 0
        n = np.where(nz.any(axis=1), HISTORY - np.argmax(nz[:, ::-1], axis=1), 0)
        return hist[:, ::-1], n

    def overloaded(self, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        dc = self.dc
        req = self.req[hosts]
        hist = self.hist[hosts]
        if extra_vm >= 0:
            req = req + dc.request[extra_vm]
            hist = hist + dc.hist[extra_vm][None, :] * (dc.s.vm_mips[extra_vm] / dc.mips[hosts])[:, None]
        util = req / dc.mips[hosts]
        if len(hosts) <= 4:
            # One host at a time, on Python floats: the same decisions without array overhead.
            out = np.empty(len(hosts), dtype=bool)
            for i, row in enumerate(hist.tolist()):
                n = len(row)
                while n and row[n - 1] == 0:
                    n -= 1  # CloudSim trims zeros at the old end of the (newest-first) history
                out[i] = self.detector.one(float(util[i]), row[:n][::-1])
            return out
        ordered, lengths = self._trimmed(hist)
        return self.detector(util, ordered, lengths)

    def _refresh_one(self, h: int) -> None:
        mips = float(self.dc.mips[h])
        u_res, u_in = float(self.u_res[h]), float(self.u_in[h])
        total = u_res + 0.1 * u_in
        over = total > mips
        self.alloc[h] = (u_res + u_in) * (mips / total if over else 1.0)
        self.available[h] = 0.0 if over else mips - total

    def _refresh(self, hosts: np.ndarray | slice) -> None:
        """Allocated and available MIPS of ``hosts`` after their VM lists changed."""
        mips = self.dc.mips[hosts]
        total = self.u_res[hosts] + 0.1 * self.u_in[hosts]
        over = total > mips
        scale = np.where(over, mips / np.where(total > 0, total, 1), 1.0)
        # getUtilizationOfCpuMips: migrating-in VMs count at their full (unscaled 0.1 x 10) share.
        self.alloc[hosts] = (self.u_res[hosts] + self.u_in[hosts]) * scale
        self.available[hosts] = np.where(over, 0.0, mips - total)

    def add(self, vm: int, host: int, sign: float = 1.0) -> None:
        dc = self.dc
        self.req[host] += sign * dc.request[vm]
        self.hist[host] += sign * dc.hist[vm] * dc.s.vm_mips[vm] / dc.mips[host]
        self.u_res[host] += sign * min(dc.request[vm], dc.s.pe_mips[host])
        self._refresh_one(host)
        if self.lr_weights is not None:
            row = self.hist[host]
            self.lin[host] = row[:len(self.lr_weights)] @ self.lr_weights
            if sign > 0:
                self.long[host] |= self.vm_long[vm]
            else:
                self.long[host] = row[len(self.lr_weights) - 1:].any()
                self.negative[host] |= row.min() < 0
        if sign > 0:
            self.lists[host].append(vm)
        else:
            self.lists[host].remove(vm)

    def find_host(self, vm: int, excluded: np.ndarray) -> int:
        """findHostForVm: the least power increase, first host on ties, never an overload."""
        dc = self.dc
        r = dc.request[vm]
        alloc = self.alloc
        after = (alloc + r) / dc.mips
        ok = ~excluded & (dc.s.pe_mips >= r) & (self.available >= r) & (after <= 1.0)
        cand = np.flatnonzero(ok)
        if cand.size == 0:
            return -1
        cost = self.power.at(cand, after[cand]) - self.power_now[cand]
        verdict = self._screen(vm, cand)
        if verdict is None:
            return self._first_not_overloaded(vm, cand, cost)
        # Cheapest first, lowest host id on ties (argmin takes the first minimum), skipping the
        # hosts the screen found overloaded; an uncertain one gets the exact test.
        cost[verdict == _OVER] = np.inf
        while True:
            i = int(np.argmin(cost))
            if cost[i] == np.inf:
                return -1
            if verdict[i] == _OK or not self.overloaded(cand[i:i + 1], vm)[0]:
                return int(cand[i])
            cost[i] = np.inf

    def _screen(self, vm: int, cand: np.ndarray) -> np.ndarray | None:
        """Overload verdicts of ``cand`` with ``vm`` added (_OK, _OVER or _UNSURE), for THR
        (exact) and LR (linear screen); None for detectors that need the exact test throughout.
        An empty host is never refused: the VM alone is what it would run."""
        dc = self.dc
        if not getattr(self.detector, "uses_history", True):
            verdict = self._by_utilisation(self._util_with(vm, cand)).view(np.int8)  # THR, exact
        elif self.lr_weights is not None:
            share = dc.s.vm_mips[vm] / dc.mips[cand]
            predicted = self.lin[cand] + share * self.vm_lin[vm]
            verdict = (predicted >= 1.0).view(np.int8)  # _OVER or _OK
            verdict[np.abs(predicted - 1.0) <= SCREEN_MARGIN] = _UNSURE
            if not self.vm_long[vm]:
                short = ~self.long[cand]
                if short.any():  # too short a history to fit: the detector's fallback, exactly
                    verdict[short] = self._by_utilisation(self._util_with(vm, cand[short]))
            verdict[self.negative[cand]] = _UNSURE
        else:
            return None
        verdict[self.alloc[cand] == 0] = _OK
        return verdict

    def _util_with(self, vm: int, hosts: np.ndarray) -> np.ndarray:
        """Utilisation of ``hosts`` with ``vm`` added, as ``overloaded`` computes it."""
        return (self.req[hosts] + self.dc.request[vm]) / self.dc.mips[hosts]

    def _by_utilisation(self, util: np.ndarray) -> np.ndarray:
        """The detector's verdict on hosts without (enough) history: it reads only ``util``."""
        return self.detector(util, np.zeros((len(util), HISTORY)), np.zeros(len(util), np.int64))

    def _first_not_overloaded(self, vm: int, cand: np.ndarray, cost: np.ndarray) -> int:
        """The cheapest candidate that ``vm`` would not overload (ties: lowest host id), testing
        one host at a time: the first one or two usually pass."""
        dc = self.dc
        r = dc.request[vm]
        vm_hist = dc.hist[vm]
        vm_mips = dc.s.vm_mips[vm]
        alloc, req, hist, mips = self.alloc, self.req, self.hist, dc.mips
        one = self.detector.one
        for h in cand[np.argsort(cost, kind="stable")].tolist():
            if alloc[h] == 0:
                return h
            # ``overloaded([h], vm)``, on one row: the same operations on the same doubles.
            row = (hist[h] + vm_hist * (vm_mips / mips[h])).tolist()
            n = len(row)
            while n and row[n - 1] == 0:
                n -= 1
            if not one(float((req[h] + r) / mips[h]), row[:n][::-1]):
                return h
        return -1

    def place_all(self, vms: list[int], excluded: np.ndarray, all_or_nothing: bool
                  ) -> list[tuple[int, int]]:
        dc = self.dc
        order = sorted(vms, key=lambda v: -dc.request[v])  # stable, largest request first
        plan: list[tuple[int, int]] = []
        for vm in order:
            host = self.find_host(vm, excluded)
            if host < 0:
                if all_or_nothing:
                    for v, h in plan:
                        self.add(v, h, -1.0)
                    return []
                continue
            self.add(vm, host)
            plan.append((vm, host))
        return plan

    def run(self) -> list[tuple[int, int]]:
        dc = self.dc
        n_h = len(dc.mips)
        everyone = np.arange(n_h)
        over = self.overloaded(everyone)
        leaving: list[int] = []
        for h in np.flatnonzero(over).tolist():
            while True:
                cands = [v for v in self.lists[h] if not self.moving[v]]
                if not cands:
                    break
                c = np.array(cands)
                hist = dc.hist[c][:, ::-1]
                n = dc.hist_len[c]
                select = dc.s.selection
                assert select is not None  # set with the policy
                pick = int(c[select(dc.s.vm_ram_mb[c].astype(float),
                                    dc.request[c] / dc.s.vm_mips[c], hist, n)])
                leaving.append(pick)
                self.add(pick, h, -1.0)
                if not self.overloaded(np.array([h]))[0]:
                    break
        plan = self.place_all(leaving, over.copy(), all_or_nothing=False)

        # Underload. (CloudSim bug) the hosts that just received VMs are not excluded as sources:
        # their list is read from a fresh, empty migration map.
        off = dc.u_last == 0
        excluded_source = over | off
        excluded_target = over | off
        while not excluded_source.all():
            source = self._least_used(excluded_source)
            if source < 0:
                break
            excluded_source[source] = True
            excluded_target[source] = True
            vms = [v for v in self.lists[source] if not self.moving[v]]
            if not vms:
                continue
            moved = self.place_all(vms, excluded_target, all_or_nothing=True)
            for _, target in moved:
                excluded_source[target] = True
            plan += moved
        return plan

    def _least_used(self, excluded: np.ndarray) -> int:
        dc = self.dc
        u = dc.u_last
        ok = ~excluded & (u > 0) & (u < 1)
        for h in np.flatnonzero(ok)[np.argsort(u[ok], kind="stable")].tolist():
            # areAllVmsMigratingOutOrAnyVmMigratingIn: the first VM not migrating decides.
            members = self.lists[h][: len(dc.vms_of[h])] + dc.mig_in[h] + \
                self.lists[h][len(dc.vms_of[h]):]
            usable = False
            for v in members:
                if not self.moving[v]:
                    usable = True
                    break
                if v in dc.mig_in[h]:
                    break
            if usable:
                return h
        return -1
