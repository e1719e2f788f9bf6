# cython: boundscheck=False, wraparound=False, cdivision=True
"""The fabric's state while one link holds every flow: copies run on that link's byte clock.

When every flowing copy crosses one link and that link is the tightest on each one's path (a
datacenter's spine in a mass evacuation, a site's uplink in a DR wave), max-min gives them all
one rate, the link's capacity over their number, and each start or end changes it for all. If
each change brought every copy up to date and predicted it again, a wave of N migrations would
cost O(N²). Here the link keeps a byte clock instead: the bytes each of its flows has sent since
the clock started, growing at the shared rate. A copy far from the end of its round is not
touched at a change. It keeps the clock reading at which its round ends (its *key*), and what it
has sent by any time is the clock's advance since its anchor.

A copy needs a prediction only once its round could end or its downtime test could pass. Neither
can happen before what is left of the round fits in the downtime limit: that is the lower bound
of :meth:`FabricState.predict <vsim.model.kernels.rounds.FabricState.predict>`, here in bytes.
So the copy stays on the clock until the clock comes within ``rate x zone_s`` bytes of its key
(the bound's seconds at the current rate). Then it is brought up to date and predicted, as the
other flows always are, and it goes back on the clock at the next rate change if it is again far
from a round end. At each change the other flows are caught up at the old rate and predicted as
:meth:`FabricState.move_rates <vsim.model.kernels.rounds.FabricState.move_rates>` does.

The fabric enters this mode when max-min has given one link's share to every flow, and leaves it
when a change of flows or caps would give any flow another rate (then every copy on the clock is
brought up to date, and max-min runs again in full). A copy's bytes come from the difference of
two clock readings instead of a sum of rate x time pieces, so results agree with the other
builds to rounding, not to the last bit.
"""

from __future__ import annotations

import math

import numpy as np

from vsim.model.kernels.rounds import FabricState

INF = math.inf
EPS_S = 1e-9  # as rounds.EPS_S


class BottleneckState(FabricState):
    """:class:`FabricState` with the byte clock of a link that holds every flow (see the module).

    ``key``: per VM, the clock reading at which its round ends (inf: not on the clock), with the
    least of each block in ``key_min``; ``banchor``: the clock reading at its anchor. The clock
    reads ``b0 + rate x (t - t0)``. ``counted``: the VMs whose flow is in ``lcount``, the
    flows on each link."""

    def __init__(self, fabric, p, is_timer, is_flat, precopy: int, setup: int) -> None:
        FabricState.__init__(self, fabric, p, is_timer, is_flat, precopy, setup)
        f = fabric
        self.key = np.full(self.due.shape[0], INF)
        self.key_min = np.full(self.due_min.shape[0], INF)
        self.banchor = np.zeros(f.ram.shape[0])
        self.counted = np.zeros(f.ram.shape[0], dtype=np.uint8)
        self.capacity = np.asarray(f.links.capacity, dtype=float)
        self.lcount = np.zeros(self.capacity.shape[0], dtype=np.int64)
        self.paths = f._path_rows
        self.cap = min(f.p.max_bandwidth_bytes_s, f.p.switchover_bandwidth_bytes_s)
        # The bound of FabricState.bound() as seconds of the rest of a round: a copy whose rest
        # takes longer at the shared rate can neither end its round nor pass its test sooner.
        self.zone_s = (self.downtime * (1.0 + 1e-9) + 1e-6 + 1e-9 * self.window) / (1.0 - 1e-9)
        self.share_from = 1 << 62  # the fabric sets how many flows make the clock worth keeping
        self.shared = False
        self.link = -1
        self.n_flow = 0
        self.n_stale = 0
        self.entered = 0  # times the mode was entered
        self.clock_moves = 0  # changes of rate taken on the clock
        self.g_rate = 0.0
        self.t0 = 0.0
        self.b0 = 0.0

    def clock(self, t: float) -> float:
        """The clock's reading at ``t`` (no earlier than its last change)."""
        return self.b0 + self.g_rate * (t - self.t0)

    # --- copies on the clock --------------------------------------------------------------------

    def catch_up_one(self, vm: int, now: float) -> None:
        """:meth:`FabricState.catch_up_one`; a copy on the clock moves by the clock's advance."""
        if not self.key[vm] < INF:
            FabricState.catch_up_one(self, vm, now)
            return
        dt = now - self.anchor[vm]
        if not dt > 0.0:
            return
        b = self.clock(now)
        moved = b - self.banchor[vm]
        if moved > self.left[vm]:
            moved = self.left[vm]
        self.left[vm] -= moved
        self.sent[vm] += moved
        self.elapsed[vm] += dt
        self.anchor[vm] = now
        self.banchor[vm] = b

    def predict(self, vm: int, now: float) -> None:
        """:meth:`FabricState.predict` for ``vm`` brought up to ``now``; a pre-copy whose
        prediction could be left pending goes on the clock instead while the mode holds."""
        if self.key[vm] < INF:
            self.off_clock(vm)
        rate = self.rate[vm]
        if (self.shared and self.counted[vm] and self.phase[vm] == self.precopy and rate > 0.0
                and rate == self.g_rate and self.bound(self.left[vm], rate) > 0.0):
            self.pending[vm] = 0
            self.due[vm] = INF
            b = self.clock(now)
            self.banchor[vm] = b
            self.key[vm] = b + self.left[vm]
            if self.key[vm] < self.key_min[vm // self.block]:
                self.key_min[vm // self.block] = self.key[vm]
            return
        FabricState.predict(self, vm, now)

    def off_clock(self, vm: int) -> None:
        self.key[vm] = INF
        self.key_least(vm // self.block)

    def key_least(self, b: int) -> None:
        m = INF
        for k in range(b * self.block, (b + 1) * self.block):
            if self.key[k] < m:
                m = self.key[k]
        self.key_min[b] = m

    def set_due(self, vm: int, when: float) -> None:
        if self.key[vm] < INF:
            self.off_clock(vm)
        FabricState.set_due(self, vm, when)

    def least_key(self) -> float:
        m = INF
        for b in range(self.key_min.shape[0]):
            if self.key_min[b] < m:
                m = self.key_min[b]
        return m

    def take_off(self, klim: float) -> int:
        """Predict the copies on the clock whose key is at most ``klim``, from the clock's last
        change (or their anchor, if later): the rate has held since then. Returns how many."""
        made = 0
        for b in range(self.key_min.shape[0]):
            if not self.key_min[b] <= klim:
                continue
            for vm in range(b * self.block, (b + 1) * self.block):
                if self.key[vm] <= klim:
                    self.catch_up_one(vm, self.t0)
                    self.key[vm] = INF
                    self.pending[vm] = 0
                    self.due[vm] = self.anchor[vm] + self.visible_in(vm)
                    made += 1
            self.key_least(b)
            self.block_least(b)
        return made

    # --- the next transitions -------------------------------------------------------------------

    def predicted_by(self, t: float) -> bool:
        """Take off the clock, and predict, the copies that come within their zone by ``t``
        (the next due time): :meth:`FabricState.next_due` then looks again."""
        if not self.shared:
            return False
        kmin = self.least_key()
        if not kmin < INF:
            return False
        ta = self.t0 + (kmin - self.g_rate * self.zone_s - self.b0) / self.g_rate
        if not ta <= t:
            return False
        if ta < self.t0:
            ta = self.t0
        klim = self.clock(ta + max(EPS_S, 1e-13 * ta)) + self.g_rate * self.zone_s
        self.take_off(klim if klim > kmin else kmin)
        return True

    def take_due(self, limit: float, out) -> int:
        if self.shared and self.least_key() < INF:
            self.take_off(self.clock(limit) + self.g_rate * self.zone_s)
        return FabricState.take_due(self, limit, out)

    # --- entering, keeping and leaving the mode ---------------------------------------------------

    def count_flow(self, vm: int, width: int) -> None:
        """Count ``vm``'s flow on its links, or no longer, as its phase has it now."""
        ph = self.phase[vm]
        flowing = 1 if (self.is_flat[ph] or ph == self.precopy) else 0
        if flowing == self.counted[vm]:
            return
        step = 1 if flowing else -1
        for k in range(width):
            link = self.paths[vm, k]
            if link >= 0:
                self.lcount[link] += step
        self.n_flow += step
        self.counted[vm] = flowing

    def count_flows(self, vms, width: int) -> None:
        for i in range(vms.shape[0]):
            self.count_flow(vms[i], width)

    def uncount(self, ids) -> None:
        for i in range(ids.shape[0]):
            self.counted[ids[i]] = 0

    def try_share(self, ids, width: int, now: float) -> bool:
        """Enter the mode if max-min has just given every flow of ``ids`` (the migrations under
        way) one link's share; their copies far from a round end go on the clock."""
        if self.shared:
            return True
        first = -1  # every flow must have the rate of the first (a quick no, as a rule)
        for i in range(ids.shape[0]):
            vm = ids[i]
            if self.is_flat[self.phase[vm]] or self.phase[vm] == self.precopy:
                if first < 0:
                    first = vm
                elif self.rate[vm] != self.rate[first]:
                    return False
        if first < 0 or not self.rate[first] > 0.0:
            return False
        # Outside the mode no flow is counted (leave() and a failure here uncount them).
        for link in range(self.lcount.shape[0]):
            self.lcount[link] = 0
        self.n_flow = 0
        self.count_flows(ids, width)
        self.link = -1
        if self.n_flow >= self.share_from:
            for k in range(width):
                link = self.paths[first, k]
                if (link >= 0 and self.lcount[link] == self.n_flow
                        and self.capacity[link] / self.n_flow == self.rate[first]):
                    self.link = link
                    break
        if self.link < 0:
            self.uncount(ids)
            return False
        self.shared = True
        self.entered += 1
        self.g_rate = self.rate[first]
        self.t0 = now
        self.b0 = 0.0
        nb = 0
        for i in range(ids.shape[0]):
            vm = ids[i]
            if (self.counted[vm] and self.phase[vm] == self.precopy and self.fresh[vm]
                    and self.seen_rate[vm] == self.rate[vm]):
                self.catch_up_one(vm, now)
                self.predict(vm, now)
                nb = self.mark_block(vm // self.block, nb)
        self.least_of_marked(nb)
        return True

    def shared_rates(self, ids, now: float, out, stale) -> int:
        """The rates of ``ids`` (the migrations under way) for the flows counted now, if the
        mode still holds: every flow crosses the link, whose share is the tightest on every path
        and within every cap. Returns how many changed rate (into ``out``), and leaves in
        ``stale`` and ``n_stale`` those not on the clock (brought up to ``now`` at their old
        rates and predicted again, or left for :meth:`refresh` to predict, as ``move_rates``
        leaves them); -1, with nothing changed, if the mode no longer holds."""
        n = self.n_flow
        if n < self.share_from or n < 1 or self.lcount[self.link] != n:
            return -1
        s = self.capacity[self.link] / n  # as max-min's first pass shares it
        if s > self.cap or not s > 0.0:
            return -1
        for link in range(self.lcount.shape[0]):
            if link != self.link and self.lcount[link] > 0 and self.capacity[link] / self.lcount[link] < s:
                return -1
        self.b0 = self.clock(now)
        self.t0 = now
        self.g_rate = s
        self.clock_moves += 1
        k = 0
        m = 0
        nb = 0
        rate, seen, key, counted = self.rate, self.seen_rate, self.key, self.counted
        for i in range(ids.shape[0]):
            vm = ids[i]
            new = s if counted[vm] else 0.0
            if new == rate[vm]:
                continue
            out[k] = vm
            k += 1
            if key[vm] < INF:  # on the clock: its state and key hold
                rate[vm] = new
                seen[vm] = new
                continue
            self.catch_up_one(vm, now)
            self.rate[vm] = new
            if self.fresh[vm]:
                self.predict(vm, now)
                self.seen_rate[vm] = new
                nb = self.mark_block(vm // self.block, nb)
            stale[m] = vm
            m += 1
        self.least_of_marked(nb)
        self.n_stale = m
        return k

    def leave(self, ids, now: float) -> None:
        """Leave the mode: every copy on the clock is brought up to ``now`` and predicted (the
        flows of ``ids``, the migrations under way, are no longer counted: count the flows that
        ended first)."""
        if not self.shared:
            return
        self.shared = False
        self.uncount(ids)
        nb = 0
        for i in range(ids.shape[0]):
            vm = ids[i]
            if self.key[vm] < INF:
                self.catch_up_one(vm, now)
                self.key[vm] = INF
                self.predict(vm, now)
                nb = self.mark_block(vm // self.block, nb)
        for b in range(self.key_min.shape[0]):
            self.key_min[b] = INF
        self.least_of_marked(nb)
