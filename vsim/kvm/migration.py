"""The migration experiment: one guest dirtying memory, migrated between two local QEMUs over QMP.

For each grid point the source guest boots with the ``dirty`` workload (``dirty_rate`` bytes/s, one
word per page, over ``working_set`` bytes, each page touched once before measuring), runs for
``warmup_s``, and is migrated over TCP on 127.0.0.1 to a destination QEMU started with
``-incoming defer``, with QEMU's ``max-bandwidth`` and ``downtime-limit`` set. QEMU never gives up on
a migration that does not converge, so the experiment does what vsim's model does with
``max_sent`` and ``on_no_convergence: abort`` (Xen's rule): it cancels once QEMU has sent
``max_sent`` times the guest's memory. (A cap on rounds would not compare: QEMU synchronises its
dirty bitmap more often than once per pass over memory, so its sync count is not a round count.) After a completed migration, the guest
must go on printing progress on the destination's console within ``continue_timeout_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from vsim.kvm.host import HostError
from vsim.kvm.qemu import Guest, GuestSpec, Workspace

__all__ = ["MigrationPoint", "measure_migration"]

MIB = 2.0**20


@dataclass(frozen=True)
class MigrationPoint:
    """One configuration of the migration experiment (bytes, bytes/s, seconds)."""

    memory_bytes: float = 256 * MIB
    working_set_bytes: float = 64 * MIB
    dirty_rate_bytes_s: float = 16 * MIB
    max_bandwidth_bytes_s: float = 64 * MIB
    downtime_limit_s: float = 0.3
    max_sent: float = 2.5  # bytes sent over memory before the migration counts as not converging

    def label(self) -> str:
        return (f"B={self.max_bandwidth_bytes_s / MIB:g}MiB/s D={self.dirty_rate_bytes_s / MIB:g}MiB/s "
                f"W={self.working_set_bytes / MIB:g}MiB M={self.memory_bytes / MIB:g}MiB")

    def check(self) -> None:
        if self.working_set_bytes >= self.memory_bytes - 96 * MIB:
            raise HostError(f"{self.label()}: the working set must leave at least 96 MiB of the "
                            "guest's memory for its kernel", "lower --working-set or raise --memory")
        for name in ("memory_bytes", "working_set_bytes", "max_bandwidth_bytes_s"):
            if getattr(self, name) <= 0:
                raise HostError(f"{self.label()}: {name} must be positive")


def grid(memory: Iterable[float], working_set: Iterable[float], dirty_rate: Iterable[float],
         bandwidth: Iterable[float], **common: Any) -> list[MigrationPoint]:
    """Every combination, in a fixed order (memory, working set, bandwidth, dirty rate)."""
    points = [MigrationPoint(memory_bytes=m, working_set_bytes=w, dirty_rate_bytes_s=d,
                             max_bandwidth_bytes_s=b, **common)
              for m in memory for w in working_set for b in bandwidth for d in dirty_rate]
    for p in points:
        p.check()
    return points


def _spec(name: str, p: MigrationPoint, accel: str, incoming: bool, wall: float) -> GuestSpec:
    workload = ("dirty", f"{p.dirty_rate_bytes_s:.0f}", f"{p.working_set_bytes:.0f}", "0")
    return GuestSpec(name, workload, memory_mib=int(p.memory_bytes // MIB), accel=accel,
                     incoming=incoming, wall_limit_s=wall)


def _wait_migration(src: Guest, p: MigrationPoint, timeout: float) -> tuple[dict[str, Any], bool]:
    """Poll query-migrate to the end; (its last answer, whether vsim cancelled it)."""
    started = time.monotonic()
    deadline = started + timeout
    last: dict[str, Any] = {}
    while True:
        q = src.qmp.execute("query-migrate")
        status = q.get("status")
        if status in ("completed", "failed"):
            return q, False
        if status == "active":
            last = q
        sent = q.get("ram", {}).get("transferred", 0)
        if sent >= p.max_sent * p.memory_bytes or time.monotonic() > deadline:
            # A cancelled migration reports no statistics: keep those of the last poll.
            src.qmp.execute("migrate_cancel")
            while src.qmp.execute("query-migrate").get("status") not in ("cancelled", "failed"):
                time.sleep(0.02)
            last = dict(last, status="cancelled")
            last.setdefault("total-time", (time.monotonic() - started) * 1000)
            return last, True
        time.sleep(0.02)


def measure_point(ws: Workspace, p: MigrationPoint, *, accel: str = "tcg", warmup_s: float = 1.0,
                  boot_timeout_s: float = 120.0, migrate_timeout_s: float = 120.0,
                  continue_timeout_s: float = 10.0) -> dict[str, Any]:
    """Migrate one guest once; a row of the measured ``migrations`` table."""
    wall = boot_timeout_s + warmup_s + migrate_timeout_s + continue_timeout_s + 60
    src = ws.start(_spec("src", p, accel, False, wall))
    dst = None
    try:
        src.wait_for("ready", boot_timeout_s)
        dst = ws.start(_spec("dst", p, accel, True, wall))
        dst.qmp.execute("migrate-incoming", uri="tcp:127.0.0.1:0")
        port = dst.qmp.execute("query-migrate")["socket-address"][0]["port"]
        src.wait_for("dirty", warmup_s + 30, after=int(warmup_s / 0.25))
        src.qmp.execute("migrate-set-parameters", max_bandwidth=int(p.max_bandwidth_bytes_s),
                        downtime_limit=round(p.downtime_limit_s * 1000))
        src.qmp.execute("migrate", uri=f"tcp:127.0.0.1:{port}")
        q, cancelled = _wait_migration(src, p, migrate_timeout_s)
        ram = q.get("ram", {})
        status = q.get("status")
        continued = False
        if status == "completed":
            # The guest's progress lines now come out of the destination's console.
            dst.wait_for("dirty", continue_timeout_s, after=1)
            continued = True
            outcome = "completed"
        elif status == "cancelled" and cancelled:
            outcome = "aborted"
        else:
            raise HostError(f"{p.label()}: QEMU's migration ended '{status}' "
                            f"({q.get('error-desc', 'no reason given')})")
        page = float(ram.get("page-size", 4096))
        return {
            "duration_s": q.get("total-time", 0) / 1000.0,
            "bytes": float(ram.get("transferred", 0)),
            "outcome": outcome,
            "downtime_s": q.get("downtime", 0) / 1000.0 if outcome == "completed" else 0.0,
            "syncs": int(ram.get("dirty-sync-count", 0)),
            "dirty_pages_rate": float(ram.get("dirty-pages-rate", 0)),
            "setup_s": q.get("setup-time", 0) / 1000.0,
            "zero_bytes": float(ram.get("duplicate", 0)) * page,
            "downtime_bytes": float(ram.get("downtime-bytes", 0)),
            "guest_continued": continued,
        }
    finally:
        ws.stop(src)
        if dst is not None:
            ws.stop(dst)


def measure_migration(ws: Workspace, points: list[MigrationPoint], *, accel: str = "tcg",
                      repeats: int = 1, progress: Callable[[str], None] | None = None,
                      **options: Any) -> list[dict[str, Any]]:
    """The measured ``migrations`` rows of every point, ``repeats`` times each."""
    rows = []
    for i, p in enumerate(points):
        for r in range(repeats):
            if progress:
                progress(f"migration {i + 1}/{len(points)} {p.label()}"
                         + (f" repeat {r + 1}" if repeats > 1 else ""))
            row = asdict(p) | {"point": i, "repeat": r}
            row |= measure_point(ws, p, accel=accel, **options)
            rows.append(row)
    return rows
