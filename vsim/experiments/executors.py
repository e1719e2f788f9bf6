"""Where the runs of a sweep execute: in this process, in a pool of local processes, or on a Dask
cluster, behind one narrow interface.

An executor maps a module-level function over plain, picklable items and yields the results as
they finish, in any order. The sweep needs nothing more: each run writes its own result folder, so
only a small dict travels back. Keeping the interface this small is what lets the same sweep code
run on a laptop or a cluster, and lets a new backend be added without touching the sweep.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext
from typing import Any, Protocol, TypeVar

from vsim.errors import VsimError

__all__ = ["DaskExecutor", "Executor", "ExecutorError", "InProcess", "LocalProcesses",
           "make_executor"]

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "dask")


class ExecutorError(VsimError):
    """An executor that cannot be set up: an unreachable scheduler, a bad number of workers."""


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and yields results as they finish (in any order)."""

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      key: Callable[[T], str] | None = None) -> Iterator[R]:
        """``key`` names an item (for executors that label tasks, e.g. Dask)."""
        ...

    def close(self) -> None:
        ...


def _window(slots: int) -> int:
    # Submitting everything at once would hold every pending item in the pool's queues and make an
    # interrupted sweep wait for them to be cancelled; a few items per slot keeps every worker busy.
    return max(2 * slots, slots + 2)


class InProcess:
    """One run after the other in this process: no start-up cost, tracebacks where you look."""

    workers = 1

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      key: Callable[[T], str] | None = None) -> Iterator[R]:
        for item in items:
            yield fn(item)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "1 process"


class LocalProcesses:
    """A pool of local worker processes (``concurrent.futures``), started fresh rather than forked
    from this process, so the worker state never inherits threads or open files from the caller."""

    def __init__(self, workers: int, preload: tuple[str, ...] = ()) -> None:
        if workers < 1:
            raise ExecutorError(f"--workers must be at least 1 (got {workers})")
        self.workers = workers
        context: BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            # The fork server imports vsim once; each worker is then forked from it in
            # milliseconds instead of importing numpy, pandas and vsim again (about 1.5 s each).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(preload))
        else:
            context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      key: Callable[[T], str] | None = None) -> Iterator[R]:
        pending: set[Future[R]] = set()
        source = iter(items)
        try:
            while True:
                for item in source:
                    pending.add(self.pool.submit(fn, item))
                    if len(pending) >= _window(self.workers):
                        break
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> str:
        return f"{self.workers} local processes"


class DaskExecutor:
    """A Dask cluster: the one at ``scheduler`` (``tcp://host:port``), or a local cluster of
    ``workers`` single-threaded processes started here and closed with the executor.

    The workers write the result folders themselves, so they must see the same filesystem as
    this process (and have the same vsim installed)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 connect_timeout_s: float = 20.0) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise ExecutorError(f"the dask executor needs the 'distributed' package ({exc})") from None
        self.cluster: Any = None
        if scheduler is None:
            n = workers or os.cpu_count() or 1
            self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout=connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler}: {exc} "
                                    "(start one with `dask scheduler`, or leave out --scheduler "
                                    "for a local cluster)") from None
        self.scheduler = scheduler
        # A unique prefix, so runs of two sweeps (or a resumed one) never share a task key.
        self.token = uuid.uuid4().hex[:8]

    @property
    def workers(self) -> int:
        threads = self.client.nthreads()
        return max(1, sum(threads.values()))

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      key: Callable[[T], str] | None = None) -> Iterator[R]:
        from distributed import as_completed

        source = iter(items)
        counter = 0

        def submit(item: T) -> Any:
            nonlocal counter
            counter += 1
            name = key(item) if key is not None else f"item-{counter}"
            return self.client.submit(fn, item, pure=False, key=f"vsim-{name}-{self.token}")

        first = [submit(item) for _, item in zip(range(_window(self.workers)), source,
                                                 strict=False)]
        if not first:
            return
        queue = as_completed(first)
        try:
            for future in queue:
                result = future.result()
                future.release()
                for item in source:
                    queue.add(submit(item))
                    break
                yield result
        finally:
            for future in list(queue.futures):
                future.cancel()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def describe(self) -> str:
        where = self.scheduler or "a local Dask cluster"
        return f"{where} ({self.workers} worker threads)"


def make_executor(kind: str, workers: int | None = None, scheduler: str | None = None,
                  preload: tuple[str, ...] = ()) -> InProcess | LocalProcesses | DaskExecutor:
    """The executor named ``kind`` ('local' or 'dask'). ``workers``: processes (default: every
    core; 1 runs in this process). ``scheduler``: a Dask scheduler's address. ``preload``:
    modules a local pool imports before forking its workers."""
    if kind == "local":
        if scheduler is not None:
            raise ExecutorError("--scheduler is for the dask executor; add --executor dask")
        n = workers or os.cpu_count() or 1
        return InProcess() if n == 1 else LocalProcesses(n, preload)
    if kind == "dask":
        return DaskExecutor(scheduler, workers)
    raise ExecutorError(f"unknown executor {kind!r} (use one of: {', '.join(EXECUTORS)})")
