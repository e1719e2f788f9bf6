"""Host CPU controls for the CPU experiment: a cgroup per guest with a weight and a cap."""

from __future__ import annotations

import os
from pathlib import Path

from vsim.kvm.host import HostError

__all__ = ["CpuCgroup"]

V1 = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


def _root() -> tuple[Path, int]:
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    v2_controllers = v2.read_text().split() if v2.exists() else []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(",") and V1.is_dir():
            return V1 / path.lstrip("/"), 1
        if hierarchy == "0" and "cpu" in v2_controllers:
            return Path("/sys/fs/cgroup") / path.lstrip("/"), 2
    raise HostError("this host has no cgroup cpu controller",
                    "weights and caps need it; `vsim kvm probe` shows what is there")


class CpuCgroup:
    """A child cpu cgroup: ``weight`` relative to the default 1 (cpu.shares 1024, cpu.weight
    100), ``cap`` in cores (None: none)."""

    def __init__(self, name: str, weight: float = 1.0, cap: float | None = None) -> None:
        if os.geteuid() != 0:
            raise HostError("cgroup weights and caps need root", "run as root (sudo)")
        root, version = _root()
        self.path = root / name
        try:
            self.path.mkdir()
            if version == 1:
                (self.path / "cpu.shares").write_text(str(max(2, round(1024 * weight))))
                if cap is not None:
                    (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                    (self.path / "cpu.cfs_quota_us").write_text(str(round(cap * PERIOD_US)))
            else:
                (self.path / "cpu.weight").write_text(str(max(1, min(10000, round(100 * weight)))))
                if cap is not None:
                    (self.path / "cpu.max").write_text(f"{round(cap * PERIOD_US)} {PERIOD_US}")
        except OSError as exc:
            self.close()
            raise HostError(f"cannot set up the cgroup {self.path}: {exc.strerror}") from None

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def close(self) -> None:
        if self.path.exists():
            try:
                self.path.rmdir()
            except OSError as exc:
                raise HostError(f"cannot remove the cgroup {self.path}: {exc.strerror}") from None
