"""QEMU guests and the workspace that owns them.

A :class:`Workspace` is a private (0700) directory holding each guest's QMP socket, serial log and
QEMU log. Every guest is started through coreutils ``timeout`` so that it has a wall-clock limit even
if vsim itself is killed, and with a parent-death signal so that it does not outlive vsim. Closing the
workspace (on success, error, timeout or Ctrl-C: it is a context manager, and SIGTERM is turned into
the same exception as Ctrl-C) stops every guest (SIGTERM, then SIGKILL) and removes the directory.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from vsim.kvm.host import HostError
from vsim.kvm.image import GuestImage
from vsim.kvm.qmp import QmpClient

__all__ = ["Guest", "GuestSpec", "Workspace", "qemu_binary"]

QBOOT = Path("/usr/share/qemu/qboot.rom")
LINE = re.compile(r"^vsim (\w[\w-]*)((?: [\w-]+=\S*)*)\s*$")
QEMU_FIX = ("install QEMU: `apt-get install qemu-system-x86` (QEMU 10 for migrating busy guests: "
            "on Debian 12 add bookworm-backports and use `-t bookworm-backports`)")


def qemu_binary() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        raise HostError("QEMU is not installed (no qemu-system-x86_64 on PATH)", QEMU_FIX)
    return path


@dataclass(frozen=True)
class GuestSpec:
    """What one guest is: memory, vCPUs, the workload argv (see guest/workload.c) and where it runs."""

    name: str
    workload: tuple[str, ...]
    memory_mib: int = 256
    vcpus: int = 1
    accel: str = "tcg"  # tcg | kvm
    host_cpus: tuple[int, ...] | None = None  # pin every QEMU thread to these host cores
    incoming: bool = False  # wait for an incoming migration (QMP migrate-incoming)
    balloon: bool = False
    cgroups: tuple[Path, ...] = ()  # join these cgroups (their cgroup.procs files) first
    huge_pages: bool = True  # False: no transparent huge pages for the guest's memory
    wall_limit_s: float = 300.0

    def append(self) -> str:
        words = ",".join(self.workload)
        if not re.fullmatch(r"[\w.,-]+", words):
            raise HostError(f"guest {self.name}: workload arguments {words!r} are not plain words")
        return f"console=ttyS0 quiet panic=-1 vsim={words}"


@dataclass
class Record:
    """One line the guest printed: ``vsim <kind> key=value ...``."""

    kind: str
    fields: dict[str, str] = field(default_factory=dict)

    def num(self, key: str) -> float:
        return float(self.fields[key])


class Guest:
    def __init__(self, spec: GuestSpec, stem: Path, proc: subprocess.Popen[bytes]) -> None:
        self.spec, self.proc = spec, proc
        self.qmp_path = stem.with_suffix(".qmp")
        self.serial_path = stem.with_suffix(".serial")
        self.log_path = stem.with_suffix(".log")
        self._qmp: QmpClient | None = None
        self.started = time.monotonic()

    @property
    def qmp(self) -> QmpClient:
        if self._qmp is None:
            self.check_alive()
            self._qmp = QmpClient(self.qmp_path)
        return self._qmp

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            log = self.log_path.read_text(errors="replace").strip() if self.log_path.exists() else ""
            tail = " | ".join(log.splitlines()[-3:]) or "no output"
            raise HostError(f"QEMU for guest {self.spec.name} exited with status {code}: {tail}",
                            "run `vsim kvm probe` to see what this host supports")

    def records(self) -> list[Record]:
        """Every ``vsim ...`` line printed so far on the serial console."""
        if not self.serial_path.exists():
            return []
        out = []
        text = self.serial_path.read_text(errors="replace")
        # The guest may be writing its last line as we read: a line counts once it has ended.
        for line in text[:text.rfind("\n") + 1].splitlines():
            m = LINE.match(line.strip())
            if m:
                pairs = (w.split("=", 1) for w in m.group(2).split())
                out.append(Record(m.group(1), {k: v for k, v in pairs}))
        return out

    def wait_for(self, kind: str, timeout: float, *, after: int = 0) -> Record:
        """The first record of ``kind`` past the first ``after`` records of that kind."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.records() if r.kind == kind]
            if len(found) > after:
                return found[after]
            errors = [r for r in self.records() if r.kind == "error"]
            if errors:
                raise HostError(f"the workload in guest {self.spec.name} failed: {errors[0].fields}")
            self.check_alive()
            if time.monotonic() > deadline:
                raise HostError(f"guest {self.spec.name} printed no '{kind}' line within "
                                f"{timeout:.0f} s", "run `vsim kvm probe`: the guest may not boot "
                                "with this accelerator")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        _terminate(self.proc)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _child_setup(cgroups: tuple[Path, ...], huge_pages: bool) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: not outlive vsim
        if not huge_pages:
            libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE, inherited by QEMU
        for procs in cgroups:  # QEMU and its threads start inside the cgroups
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
    return setup


class _Interrupted(KeyboardInterrupt):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(f"signal {signum}")


def _sweep_stale(tmp: Path) -> None:
    """Remove the workspaces of vsim processes that were killed outright (SIGKILL leaves no
    chance to clean up; their QEMUs died with them, by the parent-death signal)."""
    for folder in tmp.glob("vsim-kvm-*"):
        try:
            pid = int((folder / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue  # not ours to judge (another user's, or being created right now)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class _SignalsHeld:
    """Inside the block, Ctrl-C and SIGTERM are noted rather than acted on; after it, the
    handlers in ``restore`` are put back and the first signal noted is raised again, to them.

    Python runs signal handlers in the main thread, so this works there only (elsewhere it does
    nothing). Blocking the signals (pthread_sigmask) would not do: a signal sent to the process
    goes to any thread that does not block it, such as a numerical library's worker."""

    def __enter__(self) -> _SignalsHeld:
        self.caught: list[int] = []
        self.restore: dict[int, object] = {}
        if _in_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.restore[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.caught.append(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.restore.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(sig, handler)  # type: ignore[arg-type]
        if self.caught:
            signal.raise_signal(self.caught[0])


class Workspace:
    """A private folder and the guests started in it; a context manager that cleans everything."""

    def __init__(self, image: GuestImage) -> None:
        self.image = image
        self.folder = Path()  # made when the workspace is entered
        self.guests: list[Guest] = []
        self._undo: list[Callable[[], None]] = []  # host changes to undo, last first
        self.leftovers: list[str] = []  # what could not be undone
        self._started = 0
        self._qemu = qemu_binary()
        self._old_handler: object = None

    def __enter__(self) -> Workspace:
        # The folder is made with Ctrl-C and SIGTERM held back, and the handler is in place
        # before they are let through: a signal that came meanwhile is raised as they are, inside
        # the try, and the folder goes. Made outside that (in __init__), a Ctrl-C between the
        # folder and the with statement left the folder behind.
        try:
            with _SignalsHeld() as held:
                _sweep_stale(Path(tempfile.gettempdir()))
                self.folder = Path(tempfile.mkdtemp(prefix="vsim-kvm-"))  # mode 0700
                (self.folder / "owner.pid").write_text(str(os.getpid()))
                if signal.SIGTERM in held.restore:  # the main thread; elsewhere leave signals alone
                    self._old_handler = held.restore[signal.SIGTERM]
                    held.restore[signal.SIGTERM] = _on_sigterm
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if self.leftovers and kind is None:
            raise HostError("could not undo every change to the host: " + "; ".join(self.leftovers))

    @staticmethod
    def _accel(spec: GuestSpec) -> str:
        # TCG reserves 1 GiB for translated code by default; a guest this small needs a few MiB,
        # and a smaller cache keeps QEMU's own memory small next to the guest's.
        return "tcg,tb-size=64" if spec.accel == "tcg" else spec.accel

    def argv(self, spec: GuestSpec, stem: Path) -> list[str]:
        argv = ["timeout", "--kill-after=5", f"{spec.wall_limit_s:.0f}"]
        if spec.host_cpus is not None:
            argv += ["taskset", "-c", ",".join(map(str, spec.host_cpus))]
        argv += [self._qemu, "-name", f"vsim-{spec.name},debug-threads=on",
                 "-machine", "pc", "-accel", self._accel(spec), "-m", f"{spec.memory_mib}M",
                 "-smp", str(spec.vcpus), "-nodefaults", "-no-reboot", "-display", "none",
                 "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
                 "-append", spec.append(),
                 "-serial", f"file:{stem.with_suffix('.serial')}",
                 "-qmp", f"unix:{stem.with_suffix('.qmp')},server=on,wait=off"]
        if QBOOT.exists():
            argv += ["-bios", str(QBOOT)]
        if spec.accel == "kvm":
            argv += ["-cpu", "host"]
        if spec.balloon:
            argv += ["-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=on"]
        if spec.incoming:
            argv += ["-incoming", "defer"]
        return argv

    def start(self, spec: GuestSpec) -> Guest:
        if any(g.spec.name == spec.name for g in self.guests):
            raise ValueError(f"a guest named {spec.name} already runs in this workspace")
        # Files are named by start order too: a guest never reads an earlier one's console.
        self._started += 1
        stem = self.folder / f"{self._started:03d}-{spec.name}"
        log = open(stem.with_suffix(".log"), "wb")  # noqa: SIM115 - closed with the process
        # Started and listed at once: a guest started but not yet listed is one close() misses.
        with _SignalsHeld():
            try:
                proc = subprocess.Popen(self.argv(spec, stem), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT,
                                        preexec_fn=_child_setup(spec.cgroups, spec.huge_pages))
            except FileNotFoundError as exc:
                raise HostError(f"cannot start QEMU: {exc.filename} is missing", QEMU_FIX) from None
            finally:
                log.close()
            guest = Guest(spec, stem, proc)
            self.guests.append(guest)
        return guest

    def on_close(self, undo: Callable[[], None]) -> None:
        """Undo a change to the host (a cgroup, a swap device) when the workspace closes, after
        its guests have stopped."""
        self._undo.append(undo)

    def stop(self, guest: Guest) -> None:
        guest.stop()
        self.guests.remove(guest)

    def close(self) -> None:
        # A Ctrl-C in the middle of cleaning up stopped it before the folder went; it now waits
        # until everything is cleaned up (every step is bounded by a timeout).
        with _SignalsHeld() as held:
            self._close()
            if self._old_handler is not None and signal.SIGTERM in held.restore:
                held.restore[signal.SIGTERM] = self._old_handler
                self._old_handler = None

    def _close(self) -> None:
        for guest in list(self.guests):
            try:
                guest.stop()
            except Exception:
                _terminate(guest.proc)
        self.guests.clear()
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # undo the rest all the same, then tell
                self.leftovers.append(str(exc))
        if self.folder != Path():
            shutil.rmtree(self.folder, ignore_errors=True)


def pids_of_workspace(folder: Path) -> list[int]:
    """QEMU processes whose command line names ``folder`` (tests check none is left)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in cmd and b"qemu" in cmd:
                found.append(int(proc.name))
    return found


