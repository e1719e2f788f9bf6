# cython: boundscheck=False, wraparound=False, cdivision=True
"""Pre-copy rounds of many migrations run forward, one migration at a time.

The same arithmetic as :meth:`vsim.model.precopy.PrecopyRounds._roll` (which documents it), for a
scalar loop that Cython compiles: each migration's rounds are independent of the others', so a
loop over migrations, and over each one's rounds, gives the numpy version's results to the last
bit, without an array pass per round. Division by zero is avoided where the numpy version lets
it give inf, so that the interpreted module gives the same results too.

:class:`Rounds` holds views of the fabric's per-VM arrays (no copies: the fabric's writes are
seen here and the other way round) and its parameters; :class:`FabricState` adds the rest of
what the fabric does per instant (:mod:`vsim.model.migration`): catching up, predicting each
migration's next visible transition, and keeping those transitions with a least per block.
"""

from __future__ import annotations

import math

import numpy as np

INF = math.inf
EPS_S = 1e-9
STOP_SLACK = 1.0 + 1e-9  # the downtime test's tolerance
CONTINUE, STOP, THROTTLE, NO_CONVERGENCE = 0, 1, 2, 3


def fits_in(left: float, elapsed: float, rate: float, d: float, cap: float, room: float) -> float:
    """Seconds until what is left of the round plus what was dirtied since it began (``d`` per
    second up to ``cap``) fits in ``room`` bytes (inf: never)."""
    best = INF
    if rate > d:
        u_a = (left + d * elapsed - room) / (rate - d)
        if u_a < 0.0:
            u_a = 0.0
        if d * (elapsed + u_a) <= cap:
            best = u_a
    u_b = (left + cap - room) / rate
    if u_b < 0.0:
        u_b = 0.0
    full_at = cap / d - elapsed if d > 0.0 else INF
    if u_b >= full_at - EPS_S and u_b < best:
        best = u_b
    return best


class Rounds:
    """The pre-copy arrays of a fabric, by VM id, and the parameters of
    :meth:`vsim.model.precopy.PrecopyRounds._kernel_params`: (downtime limit, wire factor, max
    rounds or -1, max sent ratio or -1, throttle trigger, auto-converge, throttle max,
    continuous check, round-0 tail bytes on the wire, rate window)."""

    def __init__(self, left, rate, elapsed, sent, rounds, high, rbytes, dirty, wws, ram,
                 throttle, p) -> None:
        self.left, self.rate, self.elapsed, self.sent = left, rate, elapsed, sent
        self.rounds, self.high, self.rbytes, self.dirty = rounds, high, rbytes, dirty
        self.wws, self.ram, self.throttle = wws, ram, throttle
        (self.downtime, self.wf, self.max_rounds, self.max_ratio, self.trigger, self.auto,
         self.tmax, self.continuous, self.tail0, self.window) = p
        self.capped = self.max_rounds >= 0 or self.max_ratio >= 0.0
        self.nxt, self.hi = 0.0, 0  # what decide_one leaves besides its decision

    def roll_one(self, vm: int, h: float, commit: bool) -> float:
        """Run the rounds of ``vm`` forward by ``h`` seconds (inf: to a visible round end);
        returns the time spent; with ``commit`` its state is updated."""
        left = self.left[vm]
        rate = self.rate[vm]
        elapsed = self.elapsed[vm]
        sent = self.sent[vm]
        rounds = self.rounds[vm]
        high = self.high[vm]
        rbytes = self.rbytes[vm]
        if rate > 0.0 and h + EPS_S < self.bound(left, rate):
            # Within the round, short of any test that could pass: the loop below would move
            # the same bytes, at the cost of the tests.
            moved = rate * h
            if moved > left:
                moved = left
            if commit:
                self.left[vm] = left - moved
                self.sent[vm] = sent + moved
                self.elapsed[vm] = elapsed + h
            return h
        used = 0.0
        stopped = False
        whole = False  # the round under way began in this call
        if rate > 0.0:
            d = self.dirty[vm] * self.wf
            cap = self.wws[vm] * self.wf
            room = rate * self.downtime
            while True:
                to_end = left / rate
                if self.continuous:
                    if rounds == 0:
                        u = INF
                        if self.tail0 > 0.0:
                            tail = self.tail0 if self.tail0 <= self.rbytes[vm] else self.rbytes[vm]
                            rest = left - tail
                            if rest < 0.0:
                                rest = 0.0
                            passes = fits_in(left, elapsed, rate, d, cap, room)
                            if rest / rate > passes:
                                passes = rest / rate
                            if passes == INF:
                                at = INF
                            elif self.window > 0.0:
                                at = math.ceil((elapsed + passes) / self.window - 1e-9) * self.window
                            else:
                                at = elapsed + passes
                            u = at - elapsed
                            if u < 0.0:
                                u = 0.0
                            if not u < to_end - EPS_S:
                                u = INF
                    else:
                        u = fits_in(left, elapsed, rate, d, cap, room)
                        if not u < to_end - EPS_S:
                            u = INF
                    if u < INF and used + u <= h + EPS_S:
                        used += u
                        moved = rate * u
                        if moved > left:
                            moved = left
                        left -= moved
                        sent += moved
                        elapsed += u
                        stopped = True
                        break
                if not used + to_end <= h + EPS_S:
                    break
                used += to_end
                sent += left
                elapsed += to_end
                left = 0.0
                # The round's end: QEMU's (or Xen's) decision.
                nxt = self.dirty[vm] * elapsed
                if nxt > self.wws[vm]:
                    nxt = self.wws[vm]
                nxt = nxt * self.wf
                decision = CONTINUE
                hi = high + 1 if nxt > self.trigger * rbytes else 0
                if self.auto and hi >= 2 and self.throttle[vm] < self.tmax:
                    decision = THROTTLE
                    hi = 0
                if (self.max_rounds >= 0 and rounds + 1 >= self.max_rounds) or (
                        self.max_ratio >= 0.0 and sent >= self.max_ratio * self.ram[vm]):
                    decision = NO_CONVERGENCE
                if nxt <= rate * self.downtime * STOP_SLACK:
                    decision = STOP
                if decision != CONTINUE:
                    stopped = True
                    break
                grew = whole and nxt >= rbytes
                left = nxt
                rbytes = nxt
                rounds += 1
                elapsed = 0.0
                high = hi
                whole = True
                if grew and h == INF and not self.capped and not (
                        self.auto and self.throttle[vm] < self.tmax):
                    break  # no round will be shorter: never visible (see PrecopyRounds._roll)
            if not stopped and h < INF:
                step = h - used
                moved = rate * step
                if moved > left:
                    moved = left
                left -= moved
                sent += moved
                elapsed += step
        if not stopped:
            used = h
        if commit:
            self.left[vm] = left
            self.elapsed[vm] = elapsed
            self.sent[vm] = sent
            self.rounds[vm] = rounds
            self.high[vm] = high
            self.rbytes[vm] = rbytes
        return used

    def bound(self, left: float, rate: float) -> float:
        """Seconds before which no visible transition of a round with ``left`` bytes to send
        at ``rate`` can come: the downtime test needs what is left of the round to fit in the
        limit (less a margin for rounding and the rate-limit window)."""
        return (left / rate * (1.0 - 1e-9) - self.downtime * (1.0 + 1e-9) - 1e-6
                - 1e-9 * self.window)

    def roll(self, ids, horizon, commit: bool, used_a) -> None:
        """:meth:`roll_one` for each of ``ids`` with its ``horizon[i]``, into ``used_a[i]``."""
        for i in range(ids.shape[0]):
            used_a[i] = self.roll_one(ids[i], horizon[i], commit)

    def decide_one(self, vm: int) -> int:
        """The decision at the visible round end of ``vm``, as
        :meth:`vsim.model.precopy.PrecopyRounds._round_end` makes it with ``left`` (bytes of the
        round not sent, when a continuous test stopped it early); leaves in ``nxt`` the bytes
        dirtied meanwhile (or what the stop-and-copy sends) and in ``hi`` the high-rate count."""
        nxt = self.dirty[vm] * self.elapsed[vm]
        if nxt > self.wws[vm]:
            nxt = self.wws[vm]
        nxt = nxt * self.wf
        early = self.left[vm] > 0.0
        if early:
            nxt = nxt + self.left[vm]
        decision = CONTINUE
        hi = self.high[vm] + 1 if nxt > self.trigger * self.rbytes[vm] else 0
        if self.auto and hi >= 2 and self.throttle[vm] < self.tmax:
            decision = THROTTLE
            hi = 0
        if (self.max_rounds >= 0 and self.rounds[vm] + 1 >= self.max_rounds) or (
                self.max_ratio >= 0.0 and self.sent[vm] >= self.max_ratio * self.ram[vm]):
            decision = NO_CONVERGENCE
        if early or nxt <= self.rate[vm] * self.downtime * STOP_SLACK:
            decision = STOP
        self.nxt = nxt
        self.hi = hi
        return decision


class FabricState(Rounds):
    """What :class:`vsim.model.migration.MigrationFabric` does per instant, over its arrays:
    bringing migrations up to now, predicting their next visible transitions, and keeping those
    (``due``, rows of ``block`` VMs, with the least of each row in ``due_min``).

    A pre-copy migration's prediction may be left pending: its due time is then a lower bound,
    the end of its current round less the downtime limit (no visible transition can come
    sooner, as the downtime test needs what is left of the round to fit in the limit), and the
    prediction is made, from the same state, only when that bound comes within reach of the next
    instant. Each one's state changes only when it is brought up to date, which is followed by a
    new prediction, so a prediction made late is the one that would have been made at once.
    When rates change at every start and end, most predictions are never needed."""

    def __init__(self, fabric, p, is_timer, is_flat, precopy: int, setup: int) -> None:
        """``fabric``: whose arrays these are; ``p``: :meth:`Rounds`' parameters; the phase
        tables and codes of :mod:`vsim.model.precopy` (which this module cannot import)."""
        f = fabric
        Rounds.__init__(self, f.left, f.rate, f.round_elapsed, f.sent, f.round, f.high,
                        f.round_bytes, f.dirty, f.wws, f.ram, f.throttle, p)
        self.anchor, self.phase, self.dirty_max = f.anchor, f.phase, f.dirty_max
        self.fresh, self.seen_rate = f._fresh.view(np.uint8), f._seen_rate
        self.follows_cpu = bool(f.p.dirty_follows_cpu)
        self.initial, self.increment = f.p.throttle_initial, f.p.throttle_increment
        self.due, self.due_min = f._due_rows.reshape(-1), f._due_min
        self.block = f._due_rows.shape[1]
        self.is_timer, self.is_flat, self.precopy, self.setup = is_timer, is_flat, precopy, setup
        slots, blocks = f._due_rows.size, len(f._due_min)
        self.pending = np.zeros(slots, dtype=np.uint8)
        self.mark = np.zeros(slots, dtype=np.uint8)
        self.block_mark = np.zeros(blocks, dtype=np.uint8)
        self.hit = np.zeros(blocks, dtype=np.int64)
        # Where fire() leaves the VMs due and the transitions for the fabric to apply.
        self.out, self.rest, self.decision_a, self.nxt_a = f._fire_buffers

    # --- bringing up to date ----------------------------------------------------------------------

    def catch_up_one(self, vm: int, now: float) -> None:
        """Bring ``vm`` from its anchor to ``now`` (no visible transition lies between)."""
        dt = now - self.anchor[vm]
        if not dt > 0.0:
            return
        self.anchor[vm] = now
        ph = self.phase[vm]
        if self.is_timer[ph]:
            x = self.left[vm] - dt
            self.left[vm] = x if x > 0.0 else 0.0
        elif self.is_flat[ph]:
            moved = self.rate[vm] * dt
            if moved > self.left[vm]:
                moved = self.left[vm]
            self.left[vm] -= moved
            self.sent[vm] += moved
        elif ph == self.precopy:
            self.roll_one(vm, dt, True)

    def catch_up(self, ids, now: float) -> None:
        for i in range(ids.shape[0]):
            self.catch_up_one(ids[i], now)

    def move_rates(self, ids, new, now: float, out) -> int:
        """Set the rates of ``ids`` to ``new``; those that change are first brought up to
        ``now`` at their old rates, then predicted again (at their dirty rates as they are:
        :meth:`refresh` predicts again those whose dirty rate changes too). Their ids go into
        ``out``, ascending as ``ids``; returns how many. The others are left as they are: their
        predictions still hold."""
        k = 0
        nb = 0
        for i in range(ids.shape[0]):
            vm = ids[i]
            if new[i] != self.rate[vm]:
                self.catch_up_one(vm, now)
                self.rate[vm] = new[i]
                if self.fresh[vm]:  # else refresh() predicts it
                    self.predict(vm, now)
                    self.seen_rate[vm] = new[i]
                    nb = self.mark_block(vm // self.block, nb)
                out[k] = vm
                k += 1
        self.least_of_marked(nb)
        return k

    def step_rounds(self, due, rest, decision_a, nxt_a) -> int:
        """The visible transitions of ``due`` (brought up to now) that are round ends with a
        throttle step (auto-converge), taken here as
        :meth:`vsim.model.migration.MigrationFabric.fire` takes them: the throttle raised and the
        next round begun. The others go into ``rest``, in order, with the decision and bytes of
        those at a round end (-1 and 0 for the other phases), for the fabric to apply; returns
        how many."""
        k = 0
        for i in range(due.shape[0]):
            vm = due[i]
            decision = -1
            nxt = 0.0
            if self.phase[vm] == self.precopy:
                decision = self.decide_one(vm)
                nxt = self.nxt
                self.high[vm] = self.hi
                if decision != NO_CONVERGENCE and decision != STOP:
                    t = self.throttle[vm]
                    self.throttle[vm] = (self.initial if t == 0
                                         else min(t + self.increment, self.tmax))
                    self.rounds[vm] += 1
                    self.left[vm] = nxt
                    self.rbytes[vm] = nxt
                    self.elapsed[vm] = 0.0
                    continue
            rest[k] = vm
            decision_a[k] = decision
            nxt_a[k] = nxt
            k += 1
        return k

    # --- predictions ------------------------------------------------------------------------------

    def visible_in(self, vm: int) -> float:
        """Seconds from ``vm``'s anchor to its next visible transition (inf: none)."""
        ph = self.phase[vm]
        if self.is_timer[ph]:
            return self.left[vm]
        if self.is_flat[ph]:
            if self.rate[vm] == 0.0:  # as numpy divides
                return INF if self.left[vm] > 0.0 else math.nan
            return self.left[vm] / self.rate[vm]
        if ph == self.precopy:
            return self.roll_one(vm, INF, False)
        return INF

    def predict(self, vm: int, now: float) -> None:
        """The next visible transition of ``vm``, brought up to ``now``: made, or left pending
        with its lower bound when that is later than now."""
        self.pending[vm] = 0
        rate = self.rate[vm]
        if self.phase[vm] == self.precopy and rate > 0.0:
            bound = self.bound(self.left[vm], rate)
            if bound > 0.0:
                self.due[vm] = now + bound
                self.pending[vm] = 1  # predicted from its anchor, which is now
                return
        self.due[vm] = now + self.visible_in(vm)

    def refresh(self, ids, now: float, cpu, cap) -> None:
        """Dirty rates and next transitions of the migrations under way among ``ids`` (repeats
        allowed), as :meth:`vsim.model.migration.MigrationFabric.update` makes them: each one's
        is predicted again only where its rate or dirty rate changed, or it moved on."""
        nb = 0
        for i in range(ids.shape[0]):
            vm = ids[i]
            if self.mark[vm]:
                continue
            self.mark[vm] = 1
            if self.phase[vm] < self.setup:
                continue
            if self.follows_cpu:
                c = cap[vm]
                act = cpu[vm] / c if c > 0.0 else 0.0
            else:
                act = 1.0 - self.throttle[vm]
            dirty = self.dirty_max[vm] * act
            if self.fresh[vm] and self.rate[vm] == self.seen_rate[vm] and dirty == self.dirty[vm]:
                continue
            self.catch_up_one(vm, now)  # at the old dirty rate
            self.dirty[vm] = dirty
            self.predict(vm, now)
            self.seen_rate[vm] = self.rate[vm]
            self.fresh[vm] = 1
            nb = self.mark_block(vm // self.block, nb)
        for i in range(ids.shape[0]):
            self.mark[ids[i]] = 0
        self.least_of_marked(nb)

    def mark_block(self, b: int, nb: int) -> int:
        """Note block ``b`` among the ``nb`` whose least is to be found again; returns their
        count."""
        if not self.block_mark[b]:
            self.block_mark[b] = 1
            self.hit[nb] = b
            nb += 1
        return nb

    def least_of_marked(self, nb: int) -> None:
        for j in range(nb):
            self.block_mark[self.hit[j]] = 0
            self.block_least(self.hit[j])

    # --- the next transitions ---------------------------------------------------------------------

    def block_least(self, b: int) -> None:
        """The least due time of block ``b`` (NaN wins, as numpy's min)."""
        m = INF
        for k in range(b * self.block, (b + 1) * self.block):
            x = self.due[k]
            if x != x:
                m = x
                break
            if x < m:
                m = x
        self.due_min[b] = m

    def set_due(self, vm: int, when: float) -> None:
        self.due[vm] = when
        self.pending[vm] = 0
        self.block_least(vm // self.block)

    def resolve(self, limit: float) -> int:
        """Make the pending predictions whose bound is at most ``limit``; returns how many."""
        made = 0
        for b in range(self.due_min.shape[0]):
            if not self.due_min[b] <= limit:
                continue
            moved = False
            for k in range(b * self.block, (b + 1) * self.block):
                if self.pending[k] and self.due[k] <= limit:
                    self.pending[k] = 0
                    self.due[k] = self.anchor[k] + self.visible_in(k)
                    made += 1
                    moved = True
            if moved:
                self.block_least(b)
        return made

    def next_due(self) -> float:
        """When the next visible transition happens: the least due time, once no pending bound
        lies within the instant it opens."""
        while True:
            t = self.least_due()
            if t != t:
                return t
            if self.predicted_by(t):
                continue
            if not t < INF:
                return t
            if self.resolve(t + max(EPS_S, 1e-13 * t)) == 0:
                return t

    def least_due(self) -> float:
        """The least due time (NaN wins, as numpy's min)."""
        t = INF
        for b in range(self.due_min.shape[0]):
            x = self.due_min[b]
            if x != x:
                return x
            if x < t:
                t = x
        return t

    def predicted_by(self, t: float) -> bool:
        """Predict the migrations whose predictions are kept elsewhere than in ``due`` and could
        come by ``t``; returns whether there were any (none here: see BottleneckState)."""
        return False

    def fire(self, limit: float, now: float) -> tuple:
        """The transitions due by ``limit``: their VMs into ``out`` (:meth:`take_due`), brought
        up to ``now``, with throttle steps taken (:meth:`step_rounds`), and marked to be
        predicted again; returns how many are due and how many went into ``rest`` (with
        ``decision_a`` and ``nxt_a``), the fabric's buffers."""
        k = self.take_due(limit, self.out)
        for i in range(k):
            self.catch_up_one(self.out[i], now)
        r = self.step_rounds(self.out[:k], self.rest, self.decision_a, self.nxt_a)
        for i in range(k):
            self.fresh[self.out[i]] = 0
        return k, r

    def steps_alone(self, frac, cpu, cap) -> tuple:
        """What :meth:`vsim.model.migration.MigrationFabric.run_alone` does, for the instants
        whose visible transitions are all throttle steps: each is fired, the stepped VMs' CPU
        set to ``frac`` of what the throttle leaves (into ``cpu``), and their dirty rates and
        predictions refreshed, as update() would. Stops at the first instant with another
        transition, fired as :meth:`fire` leaves it, or when none is left (inf, or NaN as
        numpy's min gives it). Returns (its time, how many are due, how many in ``rest``, how
        many instants were taken here)."""
        n = 0
        while True:
            t = self.next_due()
            if not t < INF:
                return t, 0, 0, n
            k, r = self.fire(t + max(EPS_S, 1e-13 * t), t)
            if r > 0:
                return t, k, r, n
            for i in range(k):
                vm = self.out[i]
                cpu[vm] = frac[vm] * (1.0 - self.throttle[vm])
            self.refresh(self.out[:k], t, cpu, cap)
            n += 1

    def take_due(self, limit: float, out) -> int:
        """The VMs due by ``limit``, ascending, into ``out``; returns how many."""
        self.resolve(limit)
        k = 0
        for b in range(self.due_min.shape[0]):
            if not self.due_min[b] <= limit:
                continue
            for vm in range(b * self.block, (b + 1) * self.block):
                if self.due[vm] <= limit:
                    out[k] = vm
                    k += 1
        return k
