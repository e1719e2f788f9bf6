"""Running host tools for the KVM backend: argv lists only (no shell), and one clear error with the
fix when a tool is missing or fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from vsim.errors import VsimError

__all__ = ["HostError", "cgroup_root", "require_root", "require_tool", "run_tool"]


class HostError(VsimError):
    """Something this host lacks or refused, with what to do about it."""

    def __init__(self, message: str, fix: str = "") -> None:
        self.message, self.fix = message, fix
        super().__init__(f"{message} ({fix})" if fix else message)


def require_tool(name: str, fix: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise HostError(f"{name} is not installed", fix)
    return path


def run_tool(argv: list[str], *, what: str, cwd: Path | None = None, timeout: float = 600.0) -> str:
    """Run ``argv`` and return its stdout; raise HostError naming ``what`` failed, with stderr."""
    exe = shutil.which(argv[0]) or shutil.which(argv[0], path="/usr/sbin:/sbin") or argv[0]
    try:
        done = subprocess.run([exe, *argv[1:]], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise HostError(f"cannot {what}: {argv[0]} is not installed",
                        f"install the Debian package that provides {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"cannot {what}: {argv[0]} took over {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise HostError(f"cannot {what}: `{' '.join(argv)}` failed: {tail}")
    return done.stdout


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise HostError(f"{what} needs root", "run as root (sudo)")


CGROUP = Path("/sys/fs/cgroup")


def cgroup_root(controller: str) -> tuple[Path, int]:
    """This process's own cgroup for ``controller`` (children go under it) and the cgroup version:
    the v1 hierarchy of that controller, or the unified v2 one where it is enabled there."""
    v2 = CGROUP / "cgroup.controllers"
    v2_controllers = v2.read_text().split() if v2.exists() else []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") and (CGROUP / controller).is_dir():
            return CGROUP / controller / path.lstrip("/"), 1
        if hierarchy == "0" and controller in v2_controllers:
            return CGROUP / path.lstrip("/"), 2
    raise HostError(f"this host has no cgroup {controller} controller (neither cgroup v1 "
                    f"{controller} nor a cgroup v2 hierarchy with {controller} enabled)",
                    "enable it; `vsim kvm probe` shows what is there")
