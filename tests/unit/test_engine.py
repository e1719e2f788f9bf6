"""The hybrid engine: discrete handlers in simpy, each stretch between them integrated once."""

from __future__ import annotations

import pytest

from vsim.engine import Engine


class Recording:
    """An engine whose integrate and settle callbacks write to one log."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.engine = Engine(self.integrate, self.settle)

    def integrate(self, t0: float, t1: float) -> None:
        self.log.append(("integrate", t0, t1))

    def settle(self) -> None:
        self.log.append(("settle", self.engine.now))

    def handler(self, name: str):
        return lambda: self.log.append((name, self.engine.now))

    def stretches(self) -> list[tuple[float, float]]:
        return [(e[1], e[2]) for e in self.log if e[0] == "integrate"]


def test_handlers_at_the_same_instant_run_in_order_and_settle_once() -> None:
    r = Recording()
    r.engine.at(5.0, r.handler("a"))
    r.engine.at(5.0, r.handler("b"))
    r.engine.at(2.0, r.handler("early"))
    r.engine.run(10.0)
    assert r.log == [
        ("integrate", 0.0, 2.0), ("early", 2.0), ("settle", 2.0),
        # The stretch up to 5 is closed before 'a' changes anything, once, not again for 'b'.
        ("integrate", 2.0, 5.0), ("a", 5.0), ("b", 5.0), ("settle", 5.0),
        ("integrate", 5.0, 10.0),
    ]
    assert r.engine.events == 3
    assert r.engine.intervals == 3


def test_split_integrates_each_stretch_once_in_order() -> None:
    r = Recording()
    for t in (3.5, 1.0, 2.0, 2.0, 1.0, 7.25):
        r.engine.at(t, r.handler("h"))
    r.engine.run(9.0)
    assert r.stretches() == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.5), (3.5, 7.25), (7.25, 9.0)]


def test_split_from_a_handler_does_not_integrate_twice() -> None:
    r = Recording()

    def handler() -> None:
        r.engine.split()  # the interval is already closed: nothing more to integrate
        r.log.append(("h", r.engine.now))

    r.engine.at(4.0, handler)
    r.engine.run(6.0)
    assert r.stretches() == [(0.0, 4.0), (4.0, 6.0)]


def test_no_events_integrates_the_whole_run_once() -> None:
    r = Recording()
    r.engine.run(123.0)
    assert r.log == [("integrate", 0.0, 123.0)]
    assert r.engine.now == 123.0


def test_settle_runs_after_handlers_scheduled_now_by_handlers() -> None:
    r = Recording()

    def first() -> None:
        r.log.append(("first", r.engine.now))
        r.engine.at(r.engine.now, r.handler("chained"))  # same instant

    r.engine.at(1.0, first)
    r.engine.run(2.0)
    assert r.log == [
        ("integrate", 0.0, 1.0), ("first", 1.0), ("chained", 1.0), ("settle", 1.0),
        ("integrate", 1.0, 2.0),
    ]


def test_settle_sees_the_state_after_all_handlers() -> None:
    state = {"x": 0}
    seen = []
    eng = Engine(lambda t0, t1: None, lambda: seen.append(state["x"]))
    for _ in range(3):
        eng.at(1.0, lambda: state.__setitem__("x", state["x"] + 1))
    eng.run(2.0)
    assert seen == [3]


def test_a_time_in_the_past_runs_now_and_infinity_never() -> None:
    r = Recording()

    def later() -> None:
        r.engine.at(1.0, r.handler("past"))  # at 4: 1 is gone, so run now
        r.engine.at(float("inf"), r.handler("never"))

    r.engine.at(4.0, later)
    r.engine.run(10.0)
    assert ("past", 4.0) in r.log
    assert not any(e[0] == "never" for e in r.log)


def test_every_lands_exactly_on_start_plus_k_period() -> None:
    eng = Engine(lambda t0, t1: None, lambda: None)
    ticks: list[tuple[int, float]] = []
    eng.every(0.1, lambda k: ticks.append((k, eng.now)), start=0.3, count=10_001)
    eng.run(2000.0)
    assert len(ticks) == 10_001
    assert [k for k, _ in ticks] == list(range(10_001))
    # Exactly start + k * period, bit for bit: no drift from adding 0.1 ten thousand times.
    assert all(t == 0.3 + k * 0.1 for k, t in ticks)
    assert ticks[-1][1] == 0.3 + 10_000 * 0.1
    accumulated = 0.3
    for _ in range(10_000):
        accumulated += 0.1
    assert accumulated != ticks[-1][1]  # what accumulating would have given instead


def test_every_without_count_runs_until_the_end() -> None:
    eng = Engine(lambda t0, t1: None, lambda: None)
    ticks: list[float] = []
    eng.every(2.5, lambda k: ticks.append(eng.now))
    eng.run(10.0)
    assert ticks == [0.0, 2.5, 5.0, 7.5, 10.0]


def test_every_needs_a_positive_period() -> None:
    eng = Engine(lambda t0, t1: None, lambda: None)
    with pytest.raises(ValueError):
        eng.every(0.0, lambda k: None)
    with pytest.raises(ValueError):
        eng.every(-1.0, lambda k: None)


def test_stop_ends_the_run_at_the_current_instant() -> None:
    r = Recording()

    def stopper() -> None:
        r.log.append(("stop", r.engine.now))
        r.engine.stop()

    r.engine.at(3.0, stopper)
    r.engine.at(4.0, r.handler("after"))
    r.engine.every(1.0, lambda k: r.log.append(("tick", r.engine.now)))
    r.engine.run(10.0)
    assert r.engine.now == 3.0
    assert not any(e[0] == "after" for e in r.log)
    assert [e[1] for e in r.log if e[0] == "tick"] == [0.0, 1.0, 2.0, 3.0]
    assert r.stretches()[-1][1] == 3.0
    assert sum(t1 - t0 for t0, t1 in r.stretches()) == 3.0


def test_stop_twice_is_harmless() -> None:
    r = Recording()

    def stopper() -> None:
        r.engine.stop()
        r.engine.stop()

    r.engine.at(1.0, stopper)
    r.engine.run(5.0)
    assert r.engine.now == 1.0


def test_run_continues_from_where_it_stopped() -> None:
    r = Recording()
    r.engine.at(2.0, r.handler("a"))
    r.engine.at(6.0, r.handler("b"))
    r.engine.run(4.0)
    assert r.engine.now == 4.0
    r.engine.run(8.0)
    assert r.stretches() == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)]
    assert [e[0] for e in r.log if e[0] in "ab"] == ["a", "b"]
