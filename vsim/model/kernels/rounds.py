# cython: boundscheck=False, wraparound=False, cdivision=True
"""Pre-copy rounds of many migrations run forward, one migration at a time.

The same arithmetic as :meth:`vsim.model.precopy.PrecopyRounds._roll` (which documents it), for a
scalar loop that Cython compiles: each migration's rounds are independent of the others', so a
loop over migrations, and over each one's rounds, gives the numpy version's results to the last
bit, without an array pass per round. Division by zero is avoided where the numpy version lets
it give inf, so that the interpreted module gives the same results too.
"""

from __future__ import annotations

import math

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


def roll(ids, horizon, commit: bool, left_a, rate_a, elapsed_a, sent_a, round_a, high_a,
         rbytes_a, dirty_a, wws_a, ram_a, throttle_a, used_a, p) -> None:
    """Run the rounds of ``ids`` forward by ``horizon[i]`` seconds each (inf: to a visible round
    end), writing into ``used_a[i]`` the time each spent; with ``commit`` the state arrays are
    updated. ``p``: (downtime limit, wire factor, max rounds or -1, max sent ratio or -1,
    throttle trigger, auto-converge, throttle max, continuous check, round-0 tail bytes on the
    wire, rate window)."""
    downtime, wf, max_rounds, max_ratio, trigger, auto, tmax, continuous, tail0, window = p
    capped = max_rounds >= 0 or max_ratio >= 0.0
    n = ids.shape[0]
    for i in range(n):
        vm = ids[i]
        h = horizon[i]
        left = left_a[vm]
        rate = rate_a[vm]
        elapsed = elapsed_a[vm]
        sent = sent_a[vm]
        rounds = round_a[vm]
        high = high_a[vm]
        rbytes = rbytes_a[vm]
        used = 0.0
        stopped = False
        whole = False  # the round under way began in this call
        if rate > 0.0:
            d = dirty_a[vm] * wf
            cap = wws_a[vm] * wf
            room = rate * downtime
            while True:
                to_end = left / rate
                if continuous:
                    if rounds == 0:
                        u = INF
                        if tail0 > 0.0:
                            tail = tail0 if tail0 <= rbytes_a[vm] else rbytes_a[vm]
                            rest = left - tail
                            if rest < 0.0:
                                rest = 0.0
                            passes = fits_in(left, elapsed, rate, d, cap, room)
                            if rest / rate > passes:
                                passes = rest / rate
                            if passes == INF:
                                at = INF
                            elif window > 0.0:
                                at = math.ceil((elapsed + passes) / window - 1e-9) * window
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
                nxt = dirty_a[vm] * elapsed
                if nxt > wws_a[vm]:
                    nxt = wws_a[vm]
                nxt = nxt * wf
                decision = CONTINUE
                hi = high + 1 if nxt > trigger * rbytes else 0
                if auto and hi >= 2 and throttle_a[vm] < tmax:
                    decision = THROTTLE
                    hi = 0
                if (max_rounds >= 0 and rounds + 1 >= max_rounds) or (
                        max_ratio >= 0.0 and sent >= max_ratio * ram_a[vm]):
                    decision = NO_CONVERGENCE
                if nxt <= rate * downtime * STOP_SLACK:
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
                if grew and h == INF and not capped and not (auto and throttle_a[vm] < tmax):
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
        used_a[i] = used
        if commit:
            left_a[vm] = left
            elapsed_a[vm] = elapsed
            sent_a[vm] = sent
            round_a[vm] = rounds
            high_a[vm] = high
            rbytes_a[vm] = rbytes


def decide(ids, left_a, rate_a, elapsed_a, sent_a, round_a, high_a, rbytes_a, dirty_a, wws_a,
           ram_a, throttle_a, decision_a, nxt_a, hi_a, p) -> None:
    """The decisions at the visible round ends of ``ids``, as
    :meth:`vsim.model.precopy.PrecopyRounds._round_end` makes them with ``left`` (bytes of the
    round not sent, when a continuous test stopped it early): into ``decision_a``, ``nxt_a``
    (bytes dirtied meanwhile, or what the stop-and-copy sends) and ``hi_a`` (the high-rate count)."""
    downtime, wf, max_rounds, max_ratio, trigger, auto, tmax = p[:7]
    n = ids.shape[0]
    for i in range(n):
        vm = ids[i]
        nxt = dirty_a[vm] * elapsed_a[vm]
        if nxt > wws_a[vm]:
            nxt = wws_a[vm]
        nxt = nxt * wf
        early = left_a[vm] > 0.0
        if early:
            nxt = nxt + left_a[vm]
        decision = CONTINUE
        hi = high_a[vm] + 1 if nxt > trigger * rbytes_a[vm] else 0
        if auto and hi >= 2 and throttle_a[vm] < tmax:
            decision = THROTTLE
            hi = 0
        if (max_rounds >= 0 and round_a[vm] + 1 >= max_rounds) or (
                max_ratio >= 0.0 and sent_a[vm] >= max_ratio * ram_a[vm]):
            decision = NO_CONVERGENCE
        if early or nxt <= rate_a[vm] * downtime * STOP_SLACK:
            decision = STOP
        decision_a[i] = decision
        nxt_a[i] = nxt
        hi_a[i] = hi


def advance(ids, now: float, anchor_a, phase_a, left_a, rate_a, sent_a, is_timer, is_flat,
            precopy: int, pre_a, dt_a) -> int:
    """Bring ``ids`` from their anchors to ``now`` as
    :meth:`vsim.model.precopy.PrecopyRounds._catch_up` does, but for the pre-copy rounds: those
    migrations and their time to run are written into ``pre_a`` and ``dt_a``, and their count
    returned, for :func:`roll`."""
    k = 0
    n = ids.shape[0]
    for i in range(n):
        vm = ids[i]
        dt = now - anchor_a[vm]
        if not dt > 0.0:
            continue
        anchor_a[vm] = now
        ph = phase_a[vm]
        if is_timer[ph]:
            x = left_a[vm] - dt
            left_a[vm] = x if x > 0.0 else 0.0
        elif is_flat[ph]:
            moved = rate_a[vm] * dt
            if moved > left_a[vm]:
                moved = left_a[vm]
            left_a[vm] -= moved
            sent_a[vm] += moved
        elif ph == precopy:
            pre_a[k] = vm
            dt_a[k] = dt
            k += 1
    return k
