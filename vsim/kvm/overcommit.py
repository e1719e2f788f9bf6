"""Memory overcommit on real guests: ballooning and page sharing (KSM).

balloon: a guest with a virtio-balloon device touches its working set, then QMP ``balloon``
shrinks it to ``target`` and grows it back. Per step: how long the guest took to give the memory
(``query-balloon`` reaching the target), and how much of it QEMU returned to the host (its resident
memory before and after: pages the guest never touched were never resident, so taking them
returns nothing; with ``free-page-reporting`` the guest also returns what it frees).

ksm: ``guests`` identical idle guests run side by side while the kernel's samepage merging scans
them; per second, how much memory it shares. KSM's settings are restored afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vsim.kvm.host import HostError
from vsim.kvm.qemu import Guest, GuestSpec, Workspace

__all__ = ["measure_balloon", "measure_ksm", "qemu_rss_bytes"]

MIB = 2.0**20
KSM = Path("/sys/kernel/mm/ksm")
PAGE = 4096


def _qemu_pid(guest: Guest) -> int:
    """QEMU's own pid: the guest process is coreutils timeout, QEMU its child."""
    pid = guest.proc.pid
    for _ in range(3):  # timeout -> [taskset exec'd into] qemu
        children = Path(f"/proc/{pid}/task/{pid}/children")
        kids = children.read_text().split() if children.exists() else []
        if not kids:
            break
        pid = int(kids[0])
    return pid


def qemu_rss_bytes(guest: Guest) -> float:
    for line in Path(f"/proc/{_qemu_pid(guest)}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) * 1024
    raise HostError(f"cannot read QEMU's resident memory for guest {guest.spec.name}")


def _balloon_to(guest: Guest, target: float, timeout_s: float) -> float:
    """Ask for ``target`` bytes; seconds until the guest reports it (inf if it never does)."""
    start = time.monotonic()
    guest.qmp.execute("balloon", value=int(target))
    while time.monotonic() - start < timeout_s:
        if abs(guest.qmp.execute("query-balloon")["actual"] - target) < 2 * MIB:
            return time.monotonic() - start
        time.sleep(0.05)
    return float("inf")


def measure_balloon(ws: Workspace, memory_bytes: float, working_set_bytes: float,
                    targets: list[float], *, accel: str = "tcg", repeats: int = 1,
                    settle_s: float = 2.0, step_timeout_s: float = 60.0,
                    progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    rows = []
    for r in range(repeats):
        for i, target in enumerate(targets):
            if progress:
                progress(f"balloon {i + 1}/{len(targets)}: {memory_bytes / MIB:g} MiB guest to "
                         f"{target / MIB:g} MiB and back")
            spec = GuestSpec("balloon", ("touch", f"{working_set_bytes:.0f}", "random", "0"),
                             memory_mib=int(memory_bytes // MIB), accel=accel, balloon=True,
                             wall_limit_s=180 + 2 * step_timeout_s)
            guest = ws.start(spec)
            try:
                guest.wait_for("ready", 120)
                time.sleep(settle_s)
                before = qemu_rss_bytes(guest)
                inflate_s = _balloon_to(guest, target, step_timeout_s)
                time.sleep(settle_s)
                shrunk = qemu_rss_bytes(guest)
                deflate_s = _balloon_to(guest, memory_bytes, step_timeout_s)
                guest.check_alive()
                rows.append({"point": i, "repeat": r, "memory_bytes": memory_bytes,
                             "working_set_bytes": working_set_bytes, "target_bytes": target,
                             "inflate_s": inflate_s, "deflate_s": deflate_s,
                             "rss_before_bytes": before, "rss_after_bytes": shrunk,
                             "returned_bytes": before - shrunk})
            finally:
                ws.stop(guest)
    return rows


class _KsmSettings:
    """KSM switched on fast for the experiment; the host's settings back on close."""

    KEYS = ("run", "pages_to_scan", "sleep_millisecs")

    def __init__(self) -> None:
        if not (KSM / "run").exists():
            raise HostError("this host's kernel has no KSM (/sys/kernel/mm/ksm)")
        self.saved = {k: (KSM / k).read_text().strip() for k in self.KEYS}
        try:
            (KSM / "pages_to_scan").write_text("5000")
            (KSM / "sleep_millisecs").write_text("20")
            (KSM / "run").write_text("1")
        except PermissionError:
            self.close()
            raise HostError("changing KSM's settings needs root", "run as root") from None

    def close(self) -> None:
        for key in ("run", "pages_to_scan", "sleep_millisecs"):
            (KSM / key).write_text(self.saved[key])


def measure_ksm(ws: Workspace, guests: int, memory_bytes: float, *, accel: str = "tcg",
                duration_s: float = 20.0,
                progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    settings = _KsmSettings()
    ws.on_close(settings.close)
    started = [ws.start(GuestSpec(f"ksm{i}", ("spin", "0"), memory_mib=int(memory_bytes // MIB),
                                  accel=accel, wall_limit_s=180 + duration_s))
               for i in range(guests)]
    rows = []
    try:
        for g in started:
            g.wait_for("ready", 120)
        if progress:
            progress(f"ksm: {guests} guests of {memory_bytes / MIB:g} MiB, {duration_s:g} s")
        t0 = time.monotonic()
        while (t := time.monotonic() - t0) <= duration_s:
            sharing = int((KSM / "pages_sharing").read_text())
            shared = int((KSM / "pages_shared").read_text())
            rows.append({"time_s": t, "guests": guests, "memory_bytes": memory_bytes,
                         "saved_bytes": float(sharing * PAGE), "shared_bytes": float(shared * PAGE),
                         "rss_bytes": sum(qemu_rss_bytes(g) for g in started)})
            time.sleep(1.0)
    finally:
        for g in started:
            ws.stop(g)
        settings.close()
    return rows
