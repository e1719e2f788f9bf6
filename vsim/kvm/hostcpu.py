"""Host CPU controls for the CPU experiment: a cgroup per guest with a weight and a cap."""

from __future__ import annotations

from pathlib import Path

from vsim.kvm.host import HostError, cgroup_root, require_root

__all__ = ["CpuCgroup"]

PERIOD_US = 100_000


class CpuCgroup:
    """A child cpu cgroup: ``weight`` relative to the default 1 (cpu.shares 1024, cpu.weight
    100), ``cap`` in cores (None: none)."""

    def __init__(self, name: str, weight: float = 1.0, cap: float | None = None) -> None:
        require_root("cgroup weights and caps")
        root, version = cgroup_root("cpu")
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
