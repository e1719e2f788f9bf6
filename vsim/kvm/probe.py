"""What this host offers the KVM backend, found by trying rather than by reading flags.

``/dev/kvm`` can exist and accept ``KVM_CREATE_VM`` and still not boot an ordinary guest (nested
software hypervisors such as PVM run only kernels built for them), so the accelerator is chosen by
booting the guest image with a short timeout: KVM when it comes up, TCG (software emulation)
otherwise. The choice is recorded with every measurement.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vsim.kvm.host import HostError, cgroup_root
from vsim.kvm.image import GuestImage
from vsim.kvm.qemu import GuestSpec, Workspace, qemu_binary

__all__ = ["Check", "choose_accel", "probe", "qemu_version"]

MIGRATION_SAFE = (10, 0)  # older QEMU corrupts TCG migration of guests that write memory


@dataclass(frozen=True)
class Check:
    item: str
    ok: bool
    detail: str
    meaning: str  # what it means for the experiments when missing (or that all is well)


def qemu_version(binary: str | None = None) -> tuple[int, int, int]:
    out = subprocess.run([binary or qemu_binary(), "--version"], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise HostError(f"cannot read QEMU's version from {out.strip()[:80]!r}")
    return int(m[1]), int(m[2]), int(m[3])


def boots(image: GuestImage, accel: str, timeout_s: float) -> tuple[bool, str]:
    """Whether the guest image reaches its workload under ``accel`` within ``timeout_s``."""
    try:
        with Workspace(image) as ws:
            g = ws.start(GuestSpec(f"probe-{accel}", ("spin", "0.5"), memory_mib=128, accel=accel,
                                   wall_limit_s=timeout_s + 10))
            ready = g.wait_for("ready", timeout_s)
            return True, f"guest ready {float(ready.fields['t']):.1f} s after its kernel started"
    except HostError as exc:
        return False, str(exc).split(" (")[0]


def choose_accel(image: GuestImage, timeout_s: float = 20.0) -> str:
    """kvm when a guest boots under it here, else tcg."""
    if os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK):
        ok, _ = boots(image, "kvm", timeout_s)
        if ok:
            return "kvm"
    return "tcg"


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def probe(image: GuestImage | None, *, boot_timeout_s: float = 20.0) -> list[Check]:
    checks: list[Check] = []
    try:
        binary = qemu_binary()
        v = qemu_version(binary)
        text = ".".join(map(str, v))
        checks.append(Check("qemu", True, f"{binary} {text}", "guests can run"))
        checks.append(Check("qemu >= 10 (migration)", v >= MIGRATION_SAFE, text,
                            "busy guests migrate correctly" if v >= MIGRATION_SAFE else
                            "QEMU < 10 corrupts TCG migration of busy guests: migration "
                            "experiments refuse to run (install QEMU 10 from bookworm-backports)"))
    except HostError as exc:
        checks.append(Check("qemu", False, exc.message, exc.fix))
        image = None
    root = os.geteuid() == 0
    checks.append(Check("root", root, "uid 0" if root else f"uid {os.geteuid()}",
                        "cgroups, swap and KSM can be set up" if root else
                        "memory experiments need root (cgroups, swap, KSM): they are skipped"))
    kvm_dev = os.path.exists("/dev/kvm")
    if image is not None:
        ok, detail = boots(image, "tcg", boot_timeout_s * 3)
        checks.append(Check("accelerator tcg", ok, detail, "software emulation: every experiment "
                            "runs, CPU speed is emulated, guests read no steal time"))
        if kvm_dev:
            ok, detail = boots(image, "kvm", boot_timeout_s)
            checks.append(Check("accelerator kvm", ok, detail,
                                "hardware virtualisation: used for every experiment" if ok else
                                "/dev/kvm exists but does not boot this guest (a nested or "
                                "software hypervisor): experiments use tcg"))
        else:
            checks.append(Check("accelerator kvm", False, "no /dev/kvm",
                                "no hardware virtualisation: experiments use tcg"))
    for controller, works, missing in (
            ("memory", "memory limits on guests work",
             "no memory limit on guests: the swap experiment cannot run"),
            ("cpu", "guests can get cpu weights and caps",
             "--weights and --caps of the CPU experiment cannot run")):
        try:
            _, version = cgroup_root(controller)
            checks.append(Check(f"cgroup {controller}", True, f"cgroup v{version} {controller}",
                                works))
        except HostError as exc:
            checks.append(Check(f"cgroup {controller}", False, exc.message, missing))
    swaps = _read("/proc/swaps").splitlines()[1:]
    checks.append(Check("swap", bool(swaps) or root,
                        f"{len(swaps)} active swap device(s)" if swaps else "none active",
                        "guests can be pushed into swap" if (swaps or root) else
                        "no swap and not root to add one: the swap experiment cannot run"))
    zram = os.path.exists("/sys/class/zram-control") or bool(
        list(Path("/lib/modules", os.uname().release).rglob("zram.ko*")))
    checks.append(Check("zram", zram, "available" if zram else "no zram module",
                        "compressed swap in RAM for the swap experiment" if zram else
                        "the swap experiment needs a swapfile instead"))
    ksm = _read("/sys/kernel/mm/ksm/run")
    checks.append(Check("ksm", ksm != "", f"run={ksm}" if ksm else "no /sys/kernel/mm/ksm",
                        "page sharing between guests can be measured" if ksm else
                        "page sharing cannot be measured"))
    if image is not None:
        checks.append(Check("balloon", True, "virtio-balloon device and guest module",
                            "guests can be ballooned"))
    checks.append(Check("taskset", shutil.which("taskset") is not None, "util-linux",
                        "guests can be pinned to cores (CPU experiment)"))
    return checks
