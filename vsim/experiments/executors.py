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
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vsim.errors import VsimError

__all__ = ["DaskExecutor", "Executor", "ExecutorError", "InProcess", "LocalProcesses",
           "make_executor", "warm_up"]

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
    """A pool of local worker processes (``concurrent.futures``).

    Workers are forked from this process when it runs no other thread (they then start at once,
    with vsim already imported), else forked from a fork server that imported vsim once, never
    forked from a process with threads (a lock held by another thread would stay held forever in
    the child). ``start_method`` forces one ('fork', 'forkserver' or 'spawn'). Workers end on their
    own when this process dies, even by ``kill -9``, rather than lingering as orphans.
    """

    def __init__(self, workers: int, preload: tuple[str, ...] = (),
                 start_method: str | None = None) -> None:
        if workers < 1:
            raise ExecutorError(f"--workers must be at least 1 (got {workers})")
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            alone = threading.active_count() == 1
            start_method = ("fork" if alone and "fork" in methods
                            else "forkserver" if "forkserver" in methods else "spawn")
        context: BaseContext = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Each worker is forked from the server in milliseconds instead of importing numpy,
            # pandas and vsim again (about 1.5 s each).
            context.set_forkserver_preload(list(preload))
        self.start_method = start_method
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_watch_parent, initargs=(os.getpid(),))
        # Start the workers now, before the caller opens files (a sweep's lock) that forked
        # workers would otherwise inherit and hold.
        for _ in range(workers):
            self.pool.submit(_noop)

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


# A local cluster exists for this sweep alone: no one looks at its profiles, and the sampling
# profiler (every 10 ms), the GIL monitor and frequent system and memory polls take the GIL from
# the runs; glibc trimming the heap after every 64 KiB freed (Dask's default) makes numpy's many
# short-lived arrays slower. Together about 15 % of a worker's time on small runs. Work stealing
# has nothing to balance among equal workers fed a few tasks at a time, and its scheduler checks
# every 100 ms cost about 2 % of a small sweep.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.scheduler.work-stealing": False,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                                            "OPENBLAS_NUM_THREADS": 1},
}


class DaskExecutor:
    """A Dask cluster: the one at ``scheduler`` (``tcp://host:port``), or a local cluster of
    ``workers`` single-threaded processes started here and closed with the executor.

    The workers write the result folders themselves, so they must see the same filesystem as
    this process (and have the same vsim installed)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 connect_timeout_s: float = 20.0, preload: tuple[str, ...] = ()) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise ExecutorError(f"the dask executor needs the 'distributed' package ({exc})") from None
        self.cluster: Any = None
        if scheduler is None:
            n = workers or os.cpu_count() or 1
            import dask

            with dask.config.set(_local_cluster_config()):
                _preload_fork_server(preload)
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(scheduler, timeout=connect_timeout_s)
            except (OSError, TimeoutError, ValueError) as exc:  # ValueError: not an address
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

        # More in flight than locally: a result reaches the scheduler, then this client, before
        # the next submission goes out; the scheduler's own queue keeps the workers fed meanwhile.
        first = [submit(item) for _, item in zip(range(4 * _window(self.workers)), source,
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


def _local_cluster_config() -> dict[str, Any]:
    config = dict(LOCAL_CLUSTER_CONFIG)
    if "forkserver" in multiprocessing.get_all_start_methods():
        # Workers forked from a server that imported distributed, numpy, pandas and vsim once
        # start no slower than spawned ones and stop in milliseconds rather than 0.5 s.
        config["distributed.worker.multiprocessing-method"] = "forkserver"
    return config


def warm_up(kind: str, scheduler: str | None = None, preload: tuple[str, ...] = ()) -> None:
    """Start what the workers of a local Dask cluster are forked from, so that it imports its
    modules in the background while the caller plans the sweep (about a second on a small
    sweep). Does nothing for the other executors, or where there is no fork server."""
    if kind != "dask" or scheduler is not None:
        return
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    import dask
    import distributed  # noqa: F401  (its defaults must be loaded before the settings are changed)

    with dask.config.set(_local_cluster_config()):
        _preload_fork_server(preload)
    forkserver.ensure_running()


def _preload_fork_server(modules: tuple[str, ...]) -> None:
    """Have the fork server that Dask's local workers come from import ``modules`` as well as
    what Dask preloads (distributed, numpy, pandas), so that each worker starts with vsim imported
    rather than importing it at its first run. No effect once the server runs, or without one."""
    from distributed.utils import get_mp_context

    context = get_mp_context()  # sets Dask's own preload list, once per process
    if modules and context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["distributed", "numpy", "pandas", *modules])


def _noop() -> None:
    pass


def _watch_parent(parent: int) -> None:
    """In a pool worker: exit as soon as the process that started the pool is gone. A killed
    parent closes no pipes for its workers, which would otherwise wait for work forever. A run cut
    short leaves only a hidden temporary folder, which the next sweep clears."""
    direct = os.getppid() == parent  # forked from it, rather than from a fork server

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if (direct and os.getppid() != parent) or not process_running(parent):
                os._exit(1)

    threading.Thread(target=watch, name="vsim-watch-parent", daemon=True).start()


def process_running(pid: int) -> bool:
    """Whether ``pid`` runs (a dead process not yet reaped by its parent does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal test is all there is
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


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
        return DaskExecutor(scheduler, workers, preload=preload)
    raise ExecutorError(f"unknown executor {kind!r} (use one of: {', '.join(EXECUTORS)})")
