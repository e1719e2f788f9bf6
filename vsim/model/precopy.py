"""The pre-copy round model and every parameter of live migration.

Pre-copy (Clark et al., NSDI 2005) sends all of a VM's memory in round 0 (less its zero pages),
then in each next round the pages dirtied during the previous one: at the VM's dirty rate, but never
more than its writable working set. When what is left could be sent within the downtime limit, the
VM pauses and the rest goes over in a stop-and-copy (QEMU's rule, default 300 ms). A migration that
does not converge within the round or byte caps (Xen's style) is forced to stop-and-copy, aborted,
or switched to post-copy; with auto-converge the VM's vCPUs are throttled instead, from 20 % in 10 %
steps to 99 % whenever the dirty pages of two rounds exceed half of what was sent (QEMU's defaults).

A round ending is not an event unless it changes something others see (the VM pauses, is throttled,
or the flow ends). Between such events the rounds of all migrations are rolled forward together,
one pass per round, by :class:`PrecopyRounds`, which the migration fabric builds on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from vsim.model import kernels

__all__ = ["MigrationParams", "Phase", "PrecopyRounds", "RoundEnd"]

MIB = 2.0**20


@dataclass(frozen=True)
class MigrationParams:
    """Every parameter of the migration model, in one place so that calibration can fit them."""

    model: str = "precopy"  # precopy | postcopy | ram-over-bandwidth (the peers' RAM / NIC)
    max_bandwidth_bytes_s: float = 128 * MIB  # QEMU's max-bandwidth per migration
    downtime_limit_s: float = 0.3  # QEMU's downtime-limit
    # The copy while the VM is paused: QEMU lifts max-bandwidth for it, so only links limit it.
    switchover_bandwidth_bytes_s: float = math.inf
    # When the downtime test is made. continuous: QEMU's, at any moment of a round after round 0,
    # on what is left of it plus what was dirtied since it began; round-end: Xen's, once a round
    # is sent.
    switchover_check: str = "continuous"
    max_rounds: int | None = 30  # pre-copy rounds before the migration counts as not converging
    max_sent_ratio: float | None = None  # bytes sent / RAM before the same (Xen: 3)
    on_no_convergence: str = "force"  # force | abort | auto-converge | postcopy
    throttle_initial: float = 0.2  # QEMU cpu-throttle-initial
    throttle_increment: float = 0.1  # QEMU cpu-throttle-increment
    throttle_max: float = 0.99  # QEMU's CPU_THROTTLE_PCT_MAX
    throttle_trigger: float = 0.5  # QEMU throttle-trigger-threshold: dirtied / sent in a round
    zero_page_frac: float = 0.0  # share of RAM that is zero pages, not sent in round 0
    # The non-zero bytes the scan of round 0 meets after the zero pages (the top of a fresh guest's
    # RAM holds its initrd and the kernel's early allocations). QEMU's pending estimate counts
    # every page not yet scanned at full size, so until the zero pages are scanned it stays above
    # the limit; in this tail it is what is left plus what was dirtied, tested at the end of each
    # rate-limit window, and where a window ends in the tail decides how much of round 0 the pause
    # must send. 0: round 0 always ends before the VM can pause.
    round0_tail_bytes: float = 0.0
    rate_window_s: float = 0.1  # QEMU's rate-limit window (BUFFER_DELAY), from the start of round 0
    # The destination's speed for the pages it receives for the first time while the VM is paused
    # (the rest of round 0): it allocates and clears memory for each. inf: no extra time.
    fresh_page_bytes_s: float = math.inf
    page_bytes: float = 4096.0
    page_overhead_bytes: float = 8.0  # header per page on the wire
    setup_s: float = 0.05  # connection, dirty logging on
    resume_s: float = 0.02  # the VM starting on the destination
    device_state_bytes: float = 1 * MIB  # vCPU and device state sent while the VM is paused
    cpu_cycles_per_byte: float = 1.0  # on each of source and destination, per byte sent
    postcopy_slowdown: float = 0.5  # share of a VM's CPU lost to remote page faults in post-copy
    dirty_follows_cpu: bool = True  # dirty rate scales with the VM's CPU utilisation
    max_per_host: int = 8  # concurrent migrations per host, in or out (vSphere: 8 at 10 GbE)
    max_total: float = math.inf  # concurrent migrations in the whole datacenter

    @property
    def wire_factor(self) -> float:
        return 1.0 + self.page_overhead_bytes / self.page_bytes


class Phase(IntEnum):
    NONE = 0
    WAITING = 1  # for a slot under the concurrency limits
    SETUP = 2  # timer
    PRECOPY = 3  # bytes of the current round
    STOPCOPY = 4  # bytes; VM paused
    RESUME = 5  # timer; VM paused, about to run on the destination
    SWITCHOVER = 6  # post-copy: device state, VM paused
    POSTCOPY = 7  # bytes; the VM runs on the destination, slowed by page faults


class RoundEnd(IntEnum):
    CONTINUE = 0
    STOP = 1  # converged: stop-and-copy
    THROTTLE = 2  # auto-converge steps the throttle up
    NO_CONVERGENCE = 3  # a cap was hit


TIMER = (Phase.SETUP, Phase.RESUME)
FLOWING = (Phase.PRECOPY, Phase.STOPCOPY, Phase.SWITCHOVER, Phase.POSTCOPY)
PAUSED = (Phase.STOPCOPY, Phase.RESUME, Phase.SWITCHOVER)
FLAT = (Phase.STOPCOPY, Phase.SWITCHOVER, Phase.POSTCOPY)  # bytes to send, no rounds


def phase_table(phases: tuple[Phase, ...]) -> np.ndarray:
    """A lookup table: ``phase_table(P)[phase]`` is True for the phases in P (cheaper than isin)."""
    out = np.zeros(len(Phase), dtype=bool)
    out[list(phases)] = True
    return out


IS_TIMER, IS_FLOWING, IS_PAUSED, IS_FLAT = map(phase_table, (TIMER, FLOWING, PAUSED, FLAT))
IS_TIMER_U8, IS_FLAT_U8 = IS_TIMER.view(np.uint8), IS_FLAT.view(np.uint8)  # for the kernels
PHASE_SETUP, PHASE_PRECOPY, PHASE_STOPCOPY, PHASE_RESUME, PHASE_SWITCHOVER, PHASE_POSTCOPY = map(int, (
    Phase.SETUP, Phase.PRECOPY, Phase.STOPCOPY, Phase.RESUME, Phase.SWITCHOVER, Phase.POSTCOPY))
ROUND_CONTINUE, ROUND_STOP, ROUND_THROTTLE, ROUND_NO_CONVERGENCE = map(int, RoundEnd)
EPS_S = 1e-9


class PrecopyRounds:
    """The round arithmetic over the fabric's per-VM arrays (see :class:`MigrationFabric`)."""

    p: MigrationParams
    phase: np.ndarray
    left: np.ndarray
    rate: np.ndarray
    dirty: np.ndarray
    wws: np.ndarray
    ram: np.ndarray
    round: np.ndarray
    round_bytes: np.ndarray
    round_elapsed: np.ndarray
    sent: np.ndarray
    throttle: np.ndarray
    high: np.ndarray
    anchor: np.ndarray
    # Flows from which the compiled kernels keep one link's byte clock when that link holds them
    # all (vsim.model.kernels.bottleneck); the fabric sets it.
    share_from: int = 1 << 62

    def _round_end(self, ids: np.ndarray, elapsed: np.ndarray, sent_total: np.ndarray,
                   rounds_done: np.ndarray, high: np.ndarray, throttle: np.ndarray,
                   round_bytes: np.ndarray, left: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What follows a pre-copy round: (decision, bytes dirtied meanwhile, high-rate count).
        With ``left`` (bytes of the round not sent: a continuous check stopped it early) the
        decision is a stop and the bytes are what the stop-and-copy sends."""
        p = self.p
        nxt = np.minimum(self.dirty[ids] * elapsed, self.wws[ids]) * p.wire_factor
        decision = np.full(len(ids), ROUND_CONTINUE, dtype=np.int8)
        rate = self.rate[ids]
        early = np.zeros(len(ids), dtype=bool)
        if left is not None:
            early = left > 0
            nxt = nxt + np.where(early, left, 0.0)
        stop = early | (nxt <= rate * p.downtime_limit_s * (1.0 + 1e-9))
        capped = np.zeros(len(ids), dtype=bool)
        if p.max_rounds is not None:
            capped |= rounds_done >= p.max_rounds
        if p.max_sent_ratio is not None:
            capped |= sent_total >= p.max_sent_ratio * self.ram[ids]
        high = np.where(nxt > p.throttle_trigger * round_bytes, high + 1, 0)
        if p.on_no_convergence == "auto-converge":
            step = (high >= 2) & (throttle < p.throttle_max)
            decision[step] = ROUND_THROTTLE
            high = np.where(step, 0, high)
        decision[capped] = ROUND_NO_CONVERGENCE
        decision[stop] = ROUND_STOP
        return decision, nxt, high

    def _decide(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_round_end` for migrations at a visible round end now (their state brought up
        to date, ``left`` what a continuous test left of the round)."""
        return self._round_end(ids, self.round_elapsed[ids], self.sent[ids], self.round[ids] + 1,
                               self.high[ids], self.throttle[ids], self.round_bytes[ids],
                               self.left[ids])

    def _early_stop(self, ids: np.ndarray, left: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """Seconds from now until what is left of the current round plus what was dirtied since
        it began fits in the downtime limit (QEMU's continuous test); inf where that does not
        happen before the round ends."""
        u = self._fits_in(ids, left, elapsed)
        return np.where(u < left / self.rate[ids] - EPS_S, u, np.inf)

    def _round0_stop(self, ids: np.ndarray, left: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """The same for round 0 (see ``round0_tail_bytes``): the test passes from the moment the
        scan is past the zero pages and the rest fits, and is made at the next window end."""
        p = self.p
        if p.round0_tail_bytes <= 0:
            return np.full(len(ids), np.inf)
        rate = self.rate[ids]
        tail = np.minimum(p.round0_tail_bytes * p.wire_factor, self.round_bytes[ids])
        passes = np.maximum(self._fits_in(ids, left, elapsed), np.maximum(left - tail, 0.0) / rate)
        w = p.rate_window_s
        at = np.ceil((elapsed + passes) / w - 1e-9) * w if w > 0 else elapsed + passes
        u = np.maximum(at - elapsed, 0.0)
        return np.where(u < left / rate - EPS_S, u, np.inf)

    def _fits_in(self, ids: np.ndarray, left: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """Seconds from now until what is left of the round plus what was dirtied since it began
        fits in the downtime limit (inf: never). Dirtied bytes grow at the dirty rate up to the
        working set, so the pending bytes are piecewise linear in time and each piece is solved
        exactly."""
        p = self.p
        rate = self.rate[ids]
        d = self.dirty[ids] * p.wire_factor
        cap = self.wws[ids] * p.wire_factor
        room = rate * p.downtime_limit_s
        with np.errstate(divide="ignore", invalid="ignore"):
            # Before the working set is full: left - r u + d (elapsed + u) <= room.
            u_a = (left + d * elapsed - room) / (rate - d)
            ok_a = (rate > d) & (d * (elapsed + np.maximum(u_a, 0.0)) <= cap)
            # Once it is: left - r u + cap <= room.
            u_b = (left + cap - room) / rate
            full_at = np.where(d > 0, cap / d - elapsed, np.inf)
            ok_b = np.maximum(u_b, 0.0) >= full_at - EPS_S
        return np.minimum(np.where(ok_a, np.maximum(u_a, 0.0), np.inf),
                          np.where(ok_b, np.maximum(u_b, 0.0), np.inf))

    def _roll(self, ids: np.ndarray, horizon: np.ndarray | float, commit: bool) -> np.ndarray:
        """Run the pre-copy rounds of ``ids`` forward by ``horizon`` seconds each (``inf``: until
        each reaches a visible round end). Returns the time each spent before stopping at a
        visible round end (its horizon for those that did not reach one).

        A migration may never reach one: without round or byte caps, and with no throttle step
        left, a round that began here and dirtied at least its own size is followed by rounds
        no shorter (the next round's bytes grow with the last one's), whose pending bytes are
        least at their ends, where the downtime test failed. Its time is then inf, as QEMU would
        go on copying for ever."""
        horizon = (np.full(len(ids), horizon) if np.isscalar(horizon)
                   else np.asarray(horizon, dtype=float))
        if kernels.COMPILED:  # the same arithmetic, one migration at a time
            used_k = np.empty(len(ids))
            self._kernel().roll(ids, horizon, commit, used_k)
            return used_k
        left = self.left[ids].copy()
        rate = self.rate[ids]
        elapsed = self.round_elapsed[ids].copy()
        sent = self.sent[ids].copy()
        rounds = self.round[ids].copy()
        high = self.high[ids].copy()
        rbytes = self.round_bytes[ids].copy()
        used = np.zeros(len(ids))
        stopped = np.zeros(len(ids), dtype=bool)
        # Each pass ends the current round of every migration whose round ends within the
        # horizon; those that go on to an invisible next round take part in the next pass.
        going = np.flatnonzero(rate > 0)
        continuous = self.p.switchover_check == "continuous"
        p = self.p
        uncapped = p.max_rounds is None and p.max_sent_ratio is None
        can_step = (p.on_no_convergence == "auto-converge") & (self.throttle[ids] < p.throttle_max)
        whole = np.zeros(len(ids), dtype=bool)  # the round under way began in this call
        while going.size:
            to_end = left[going] / rate[going]
            if continuous:
                u = self._early_stop(ids[going], left[going], elapsed[going])
                first = rounds[going] == 0
                if first.any():
                    g0 = going[first]
                    u[first] = self._round0_stop(ids[g0], left[g0], elapsed[g0])
                cut = np.isfinite(u) & (used[going] + u <= horizon[going] + EPS_S)
                if cut.any():
                    g, du = going[cut], u[cut]
                    used[g] += du
                    moved = np.minimum(rate[g] * du, left[g])
                    left[g] -= moved
                    sent[g] += moved
                    elapsed[g] += du
                    stopped[g] = True
                    going, to_end = going[~cut], to_end[~cut]
            ends = used[going] + to_end <= horizon[going] + EPS_S
            e, took = going[ends], to_end[ends]
            if e.size == 0:
                break
            used[e] += took
            sent[e] += left[e]
            elapsed[e] += took
            left[e] = 0.0
            decision, nxt, hi = self._round_end(ids[e], elapsed[e], sent[e], rounds[e] + 1,
                                                high[e], self.throttle[ids[e]], rbytes[e])
            cont = decision == ROUND_CONTINUE
            c = e[cont]
            grew = whole[c] & (nxt[cont] >= rbytes[c])
            left[c] = rbytes[c] = nxt[cont]
            rounds[c] += 1
            elapsed[c] = 0.0
            high[c] = hi[cont]
            whole[c] = True
            stopped[e[~cont]] = True
            if uncapped:
                never = grew & np.isinf(horizon[c]) & ~can_step[c]
                c = c[~never]
            going = c
        part = np.flatnonzero(~stopped & (rate > 0) & np.isfinite(horizon))
        step = horizon[part] - used[part]
        moved = np.minimum(rate[part] * step, left[part])
        left[part] -= moved
        sent[part] += moved
        elapsed[part] += step
        used = np.where(stopped, used, horizon)
        if commit:
            self.left[ids], self.round_elapsed[ids], self.sent[ids] = left, elapsed, sent
            self.round[ids], self.high[ids], self.round_bytes[ids] = rounds, high, rbytes
        return used

    def _kernel_params(self) -> tuple:
        """The parameters of :class:`vsim.model.kernels.Rounds`, in its order (made once: ``p``
        is frozen)."""
        made = self.__dict__.get("_made_kernel_params")
        if made is not None and made[0] is self.p:
            return made[1]
        p = self.p
        params = (p.downtime_limit_s, p.wire_factor,
                  -1 if p.max_rounds is None else p.max_rounds,
                  -1.0 if p.max_sent_ratio is None else p.max_sent_ratio,
                  p.throttle_trigger, p.on_no_convergence == "auto-converge", p.throttle_max,
                  p.switchover_check == "continuous", p.round0_tail_bytes * p.wire_factor,
                  p.rate_window_s)
        self._made_kernel_params = (p, params)
        return params

    def _kernel(self, build: Any = None) -> Any:
        """The compiled kernels' view of this fabric's arrays (made once: ``p`` is frozen and
        the arrays are changed in place). ``build``: the kernel module to make it from (tests
        pass the interpreted one)."""
        made = self.__dict__.get("_made_kernel")
        if build is None and made is not None and made[0] is self.p:
            return made[1]
        state = (build or kernels).BottleneckState(self, self._kernel_params(), IS_TIMER_U8,
                                                   IS_FLAT_U8, PHASE_PRECOPY, PHASE_SETUP)
        state.share_from = self.share_from
        self._made_kernel = (self.p, state)
        return state

    def _time_to_visible(self, ids: np.ndarray) -> np.ndarray:
        until = np.full(len(ids), np.inf)
        ph = self.phase[ids]
        timer = IS_TIMER[ph]
        until[timer] = self.left[ids[timer]]
        flat = IS_FLAT[ph]
        with np.errstate(divide="ignore"):
            until[flat] = self.left[ids[flat]] / self.rate[ids[flat]]
        pre = ph == PHASE_PRECOPY
        if pre.any():
            until[pre] = self._roll(ids[pre], math.inf, commit=False)
        return until

    def _catch_up(self, ids: np.ndarray, now: float) -> None:
        """Bring ``ids`` from their anchors to ``now`` (no visible transition lies between)."""
        if kernels.COMPILED:  # the same arithmetic, one migration at a time
            self._kernel().catch_up(ids, now)
            return
        dt = now - self.anchor[ids]
        moving = dt > 0
        ids, dt = ids[moving], dt[moving]
        if ids.size == 0:
            return
        self.anchor[ids] = now
        ph = self.phase[ids]
        timer = IS_TIMER[ph]
        self.left[ids[timer]] = np.maximum(self.left[ids[timer]] - dt[timer], 0.0)
        flat = IS_FLAT[ph]
        f = ids[flat]
        moved = np.minimum(self.rate[f] * dt[flat], self.left[f])
        self.left[f] -= moved
        self.sent[f] += moved
        pre = ph == PHASE_PRECOPY
        if pre.any():
            self._roll(ids[pre], dt[pre], commit=True)

    # --- visible transitions ----------------------------------------------------------------------

