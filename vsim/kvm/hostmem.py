"""Host memory controls for the memory experiment: a cgroup memory limit and a zram swap device.

Both change the host, so both are context managers that undo what they did on every exit path;
the workspace closes them after its guests have stopped. Root only.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from types import TracebackType

from vsim.kvm.host import HostError, cgroup_root, require_root, require_tool

__all__ = ["MemoryCgroup", "ZramSwap"]

class MemoryCgroup:
    """A child memory cgroup with a limit; processes join it through ``procs``."""

    def __init__(self, name: str, limit_bytes: int | None) -> None:
        require_root("a cgroup memory limit")
        root, self.version = cgroup_root("memory")
        self.path = root / name
        try:
            self.path.mkdir()
        except OSError as exc:
            raise HostError(f"cannot create the cgroup {self.path}: {exc.strerror}") from None
        if self.version == 1:
            # Reclaim anonymous memory (to swap) as readily as page cache: the guest's memory is
            # all anonymous, and with the default 60 the kernel can give up on it and call the
            # OOM killer while file pages are scarce.
            with contextlib.suppress(OSError):
                (self.path / "memory.swappiness").write_text("100")
        if limit_bytes is not None:
            self.set_limit(limit_bytes)

    def set_limit(self, limit_bytes: int) -> None:
        """``limit_bytes`` < 0: no limit."""
        name = "memory.limit_in_bytes" if self.version == 1 else "memory.max"
        value = str(int(limit_bytes)) if limit_bytes >= 0 else ("-1" if self.version == 1 else "max")
        (self.path / name).write_text(value)

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def peak_bytes(self) -> int:
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        f = self.path / name
        return int(f.read_text()) if f.exists() else 0

    def anon_bytes(self) -> int:
        """Anonymous memory charged to the cgroup, resident or swapped: what QEMU and its guest
        hold, without the page cache (the kernel image QEMU read), which a limit reclaims first."""
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
        if self.version == 1:
            return int(stat.get("rss", 0)) + int(stat.get("swap", 0))
        return int(stat.get("anon", 0))

    def swap_bytes(self) -> int:
        stat = dict(line.split() for line in (self.path / "memory.stat").read_text().splitlines())
        return int(stat.get("swap", 0)) if self.version == 1 else int(
            (self.path / "memory.swap.current").read_text()) if (self.path / "memory.swap.current").exists() else 0

    def usage_bytes(self) -> int:
        name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        return int((self.path / name).read_text())

    def close(self) -> None:
        if not self.path.exists():
            return
        for _ in range(50):  # the processes may take a moment to leave after they were killed
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        raise HostError(f"cannot remove the cgroup {self.path}: processes still in it")

    def __enter__(self) -> MemoryCgroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ZramSwap:
    """A zram swap device of ``size_bytes``, at top priority so that guests swap to it."""

    CONTROL = Path("/sys/class/zram-control")

    def __init__(self, size_bytes: int) -> None:
        require_root("a swap device")
        if not self.CONTROL.exists():
            subprocess.run(["modprobe", "zram", "num_devices=0"], capture_output=True, check=False)
        if not self.CONTROL.exists():
            raise HostError("this host's kernel has no zram", "the memory experiment needs zram "
                            "(CONFIG_ZRAM) for swap")
        for tool in ("mkswap", "swapon", "swapoff"):
            require_tool(tool, "apt-get install util-linux")
        self.index = int((self.CONTROL / "hot_add").read_text().strip())
        self.device = Path(f"/dev/zram{self.index}")
        self.active = False
        try:
            block = Path(f"/sys/block/zram{self.index}")
            algorithms = (block / "comp_algorithm").read_text()
            if "lz4" in algorithms:
                (block / "comp_algorithm").write_text("lz4")
            (block / "disksize").write_text(str(int(size_bytes)))
            for argv in (["mkswap", str(self.device)], ["swapon", "-p", "32767", str(self.device)]):
                done = subprocess.run(argv, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise HostError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
            self.active = True
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.active:
            subprocess.run(["swapoff", str(self.device)], capture_output=True, check=False)
            self.active = False
        with contextlib.suppress(OSError):  # already removed
            (self.CONTROL / "hot_remove").write_text(str(self.index))

    def __enter__(self) -> ZramSwap:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
