"""The memory experiment: a guest touching a working set under a cgroup memory limit, with swap.

The guest runs the ``touch`` workload over ``working_set`` bytes (random or sequential order) and
reports pages touched. It boots in a cgroup and idles for a few seconds, while the cgroup is
squeezed until the kernel refuses, which pushes the memory QEMU and the guest do not use out to a
zram swap device; what stays resident is ``base``. Then the limit is lifted and the guest touches
its working set: its speed when nothing swaps (``t_hit``). Then the cgroup is limited, in steps,
to ``base + working_set / ratio``, and the same guest is measured again. The slowdown is the
unlimited speed over the limited one. Root only: the cgroup and the swap device are removed on every exit path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vsim.kvm.cpu import envelope_rate
from vsim.kvm.host import HostError
from vsim.kvm.hostmem import MemoryCgroup, ZramSwap
from vsim.kvm.qemu import Guest, GuestSpec, Workspace

__all__ = ["MemoryPoint", "measure_memory"]

MIB = 2.0**20
ORDER_ARG = {"random": "random", "sequential": "seq"}


@dataclass(frozen=True)
class MemoryPoint:
    ratio: float  # working set over the memory the guest may keep resident
    order: str = "random"
    working_set_bytes: float = 192 * MIB
    memory_bytes: float = 512 * MIB
    work: int = 0  # loop iterations of computation between two touches: a slower toucher

    def label(self) -> str:
        return (f"W/R={self.ratio:g} {self.order} W={self.working_set_bytes / MIB:g}MiB "
                f"M={self.memory_bytes / MIB:g}MiB" + (f" work={self.work}" if self.work else ""))


def _rate(guest: Guest, since: float) -> float:
    """Pages/s after guest time ``since``: the same high quantile over the reporting intervals
    as the CPU experiment's (see :func:`vsim.kvm.cpu.envelope_rate`)."""
    samples = [(r.num("t"), r.num("pages")) for r in guest.records()
               if r.kind == "touch" and r.num("t") >= since]
    if len(samples) < 3:
        return float("nan")
    t, pages = np.array(samples).T
    return envelope_rate(t, pages, 0.9)


def _squeeze(cgroup: MemoryCgroup, limit: int) -> None:
    """Lower the cgroup's limit to ``limit`` in steps. Each write makes the kernel reclaim (swap)
    down to it, or refuse with EBUSY, rather than OOM-kill QEMU as a limit that is already
    exceeded when pages are touched can."""
    current = cgroup.usage_bytes()
    while current > limit:
        current = max(limit, int(current * 0.9))
        for _ in range(20):
            try:
                cgroup.set_limit(current)
                break
            except OSError:
                time.sleep(0.25)
        else:
            raise HostError(f"the kernel could not reclaim the guest's memory down to "
                            f"{current / MIB:.0f} MiB", "use a larger --memory or a lower --ratio")
    cgroup.set_limit(limit)


def _push_out_cold(cgroup: MemoryCgroup, floor: int) -> int:
    """Squeeze an idle guest's cgroup towards ``floor`` (down to where the kernel refuses), which
    swaps out the memory QEMU and the guest do not use, then lift the limit; returns the
    anonymous memory still resident, what the idle guest keeps using."""
    current = cgroup.usage_bytes()
    while current > floor:
        current = max(floor, int(current * 0.85))
        try:
            cgroup.set_limit(current)
        except OSError:  # EBUSY: nothing more to reclaim without the guest missing it
            break
    resident = cgroup.anon_bytes() - cgroup.swap_bytes()
    cgroup.set_limit(-1)
    return resident


def _point(ws: Workspace, p: MemoryPoint, cgroup: MemoryCgroup, row: dict[str, Any], *,
           accel: str, settle_s: float, duration_s: float, boot_timeout_s: float) -> None:
    """One guest: idle while its cold memory is pushed out to swap, then touching its working set
    with no limit, then under the point's limit (same guest, same boot), into ``row``."""
    idle_s = 6.0
    spec = GuestSpec("mem", ("touch", f"{p.working_set_bytes:.0f}", ORDER_ARG[p.order], "0",
                             f"{idle_s:g}", str(p.work)),
                     memory_mib=int(p.memory_bytes // MIB), accel=accel,
                     cgroups=(cgroup.procs,),
                     # Huge pages that khugepaged assembles while the guest runs would make it
                     # faster later than sooner, and the two rates compare sooner with later.
                     huge_pages=False,
                     wall_limit_s=boot_timeout_s + idle_s + 4 * (settle_s + duration_s) + 120)
    guest = ws.start(spec)
    try:
        guest.wait_for("idle", boot_timeout_s)
        base = _push_out_cold(cgroup, int(16 * MIB))
        ready = guest.wait_for("ready", boot_timeout_s)
        time.sleep(settle_s + duration_s)
        alone = _rate(guest, ready.num("t") + settle_s)
        limit = int(base + p.working_set_bytes / p.ratio)
        row.update(base_bytes=float(base), limit_bytes=float(limit), alone_pages_s=alone)
        _squeeze(cgroup, limit)
        squeezed = max(r.num("t") for r in guest.records() if r.kind == "touch")
        time.sleep(settle_s + duration_s)
        guest.check_alive()
        rate = _rate(guest, squeezed + settle_s)
        row.update(pages_s=rate, slowdown=alone / rate, outcome="ok")
    finally:
        ws.stop(guest)


def measure_memory(ws: Workspace, points: list[MemoryPoint], *, accel: str = "tcg",
                   repeats: int = 1, settle_s: float = 4.0, duration_s: float = 6.0,
                   boot_timeout_s: float = 180.0,
                   progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Rows of the measured ``memory`` table: one per point and repeat."""
    options: dict[str, Any] = {"accel": accel, "settle_s": settle_s, "duration_s": duration_s,
               "boot_timeout_s": boot_timeout_s}
    swap = ZramSwap(int(2 * max(p.memory_bytes for p in points)))
    ws.on_close(swap.close)
    tag = f"vsim-{os.getpid()}"
    rows = []
    for r in range(repeats):
        for i, p in enumerate(points):
            if progress:
                progress(f"memory {i + 1}/{len(points)} {p.label()}"
                         + (f" repeat {r + 1}" if repeats > 1 else ""))
            cgroup = MemoryCgroup(f"{tag}-{r}-{i}", None)
            ws.on_close(cgroup.close)
            row: dict[str, Any] = {
                "point": i, "repeat": r, "ratio": p.ratio, "order": p.order,
                "working_set_bytes": p.working_set_bytes, "memory_bytes": p.memory_bytes,
                "work": p.work,
                "base_bytes": float("nan"), "limit_bytes": float("nan"), "pages_s": float("nan"),
                "alone_pages_s": float("nan"), "slowdown": float("nan"), "outcome": "killed"}
            try:
                _point(ws, p, cgroup, row, **options)
            except HostError as exc:
                if "status -9" not in str(exc):
                    raise
                # The kernel's OOM killer ended QEMU: it could not reclaim fast enough. The row
                # says so (outcome killed) and keeps what was measured before.
            finally:
                cgroup.close()
            rows.append(row)
    return rows
