"""The guest image: a Debian kernel and an initramfs with busybox, a few modules and vsim's workload.

Built from Debian packages without root and without a disk image: ``apt-get download`` fetches the
kernel and busybox-static packages, ``dpkg-deb -x`` unpacks them, the kernel's compressed payload is
decompressed to a ``vmlinux`` (which QEMU boots directly through its PVH entry point with the qboot
firmware, about twice as fast as a bzImage through SeaBIOS), and the initramfs is written here in
the kernel's ``newc`` cpio format. The workload program ships as C source in this package and is
compiled with ``gcc -static`` at build time.

Images are cached under ``~/.cache/vsim/images/<key>/``, the key hashing the package versions, the
workload source and this recipe, so a new kernel package or workload edit builds a new image.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from vsim.kvm.host import HostError, require_tool, run_tool

__all__ = ["GuestImage", "build_image", "default_cache_dir"]

RECIPE = 3  # bump when the way an image is put together changes
KERNEL_META = "linux-image-amd64"
BUSYBOX = "busybox-static"
# virtio-balloon (memory experiments) and what it needs; everything else is built in.
MODULES = ("virtio_pci", "virtio_balloon")


@dataclass(frozen=True)
class GuestImage:
    """A built image: paths and the versions it was built from (recorded with every measurement)."""

    kernel: Path  # vmlinux with a PVH entry point
    initrd: Path
    kernel_package: str  # e.g. linux-image-6.1.0-56-amd64=6.1.192-2
    busybox_package: str
    key: str

    def describe(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def default_cache_dir() -> Path:
    base = os.environ.get("VSIM_CACHE") or os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "vsim" / "images"


def _source(name: str) -> bytes:
    return resources.files("vsim.kvm").joinpath("guest", name).read_bytes()


def _candidate(package: str) -> str:
    """The version apt would install of ``package``."""
    out = run_tool(["apt-cache", "policy", package], what=f"look up {package}")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return version
    raise HostError(f"apt knows no package {package}",
                    "run `apt-get update`; vsim builds its guest from Debian packages")


def _kernel_package() -> str:
    out = run_tool(["apt-cache", "depends", KERNEL_META], what=f"look up {KERNEL_META}")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    raise HostError(f"cannot find the kernel package {KERNEL_META} depends on",
                    "run `apt-get update` on a Debian or Ubuntu host")


def _download(package: str, version: str, into: Path) -> Path:
    run_tool(["apt-get", "download", f"{package}={version}"], what=f"download {package}", cwd=into)
    debs = sorted(into.glob(f"{package}_*.deb"))
    if not debs:
        raise HostError(f"apt-get download {package} wrote no .deb", "check apt's sources")
    return debs[-1]


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed kernel inside a bzImage whose payload is xz (Debian's choice)."""
    start = bzimage.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise HostError("the kernel's payload is not xz-compressed", "use a Debian kernel package")
    raw = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
    if raw[:4] != b"\x7fELF":
        raise HostError("the kernel's payload is not an ELF vmlinux", "use a Debian kernel package")
    return raw


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """An archive in the kernel's initramfs format from (name, mode, data) entries; directories
    have mode 0o040755 and empty data, symlinks 0o120777 and their target as data."""
    out = bytearray()

    def add(ino: int, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate(entries, start=1):
        add(ino, name, mode, data)
    add(0, "TRAILER!!!", 0, b"")
    return bytes(out)


def _modules(root: Path, release: str) -> list[Path]:
    """The .ko files of MODULES and their dependencies, in load order."""
    run_tool(["depmod", "-b", str(root), release], what="index the kernel's modules")
    out = run_tool(["modprobe", "-S", release, "-d", str(root), "--show-depends", "-a", *MODULES],
                   what="resolve the guest's modules")
    paths: list[Path] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "insmod" and Path(parts[1]) not in paths:
            paths.append(Path(parts[1]))
    return paths


def _compile_workload(into: Path) -> bytes:
    require_tool("gcc", "apt-get install gcc libc6-dev")
    src = into / "workload.c"
    src.write_bytes(_source("workload.c"))
    exe = into / "workload"
    run_tool(["gcc", "-static", "-O2", "-o", str(exe), str(src)], what="compile the guest workload")
    return exe.read_bytes()


def build_image(cache_dir: Path | None = None, *, rebuild: bool = False) -> GuestImage:
    """Build the guest image, or return the cached one built from the same versions."""
    for tool, fix in (("apt-get", "vsim builds its guest from Debian packages: use a Debian or "
                                  "Ubuntu host"),
                      ("dpkg-deb", "apt-get install dpkg"), ("depmod", "apt-get install kmod")):
        require_tool(tool, fix)
    cache_dir = cache_dir or default_cache_dir()
    kernel_pkg = _kernel_package()
    kernel_version = _candidate(kernel_pkg)
    busybox_version = _candidate(BUSYBOX)
    recipe = hashlib.sha256()
    for part in (str(RECIPE), kernel_pkg, kernel_version, busybox_version):
        recipe.update(part.encode() + b"\0")
    for name in ("workload.c", "init"):
        recipe.update(_source(name))
    key = recipe.hexdigest()[:16]
    folder = cache_dir / key
    image = GuestImage(kernel=folder / "vmlinux", initrd=folder / "initrd.cpio",
                       kernel_package=f"{kernel_pkg}={kernel_version}",
                       busybox_package=f"{BUSYBOX}={busybox_version}", key=key)
    if (folder / "image.json").exists() and not rebuild:
        return image
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        work = Path(tmp)
        # apt-get download runs as the _apt user when root, which must be able to write here.
        os.chmod(work, 0o755)
        kdeb = _download(kernel_pkg, kernel_version, work)
        bdeb = _download(BUSYBOX, busybox_version, work)
        for deb, into in ((kdeb, work / "k"), (bdeb, work / "b")):
            run_tool(["dpkg-deb", "-x", str(deb), str(into)], what=f"unpack {deb.name}")
        releases = sorted(p.name for p in (work / "k" / "lib" / "modules").iterdir())
        release = releases[-1]
        bzimage = (work / "k" / "boot" / f"vmlinuz-{release}").read_bytes()
        modules = _modules(work / "k", release)
        busybox = work / "b" / "bin" / "busybox"
        entries: list[tuple[str, int, bytes]] = [
            (d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules")]
        entries += [("bin/busybox", 0o100755, busybox.read_bytes()),
                    ("bin/sh", 0o120777, b"busybox"),
                    ("init", 0o100755, _source("init")),
                    ("workload", 0o100755, _compile_workload(work)),
                    ("modules.order", 0o100644, "".join(f"{m.name}\n" for m in modules).encode())]
        entries += [(f"lib/modules/{m.name}", 0o100644, m.read_bytes()) for m in modules]
        staged = work / "image"
        staged.mkdir()
        (staged / "vmlinux").write_bytes(extract_vmlinux(bzimage))
        (staged / "initrd.cpio").write_bytes(cpio_newc(entries))
        meta = image.describe() | {"kernel_release": release, "modules": [m.name for m in modules]}
        (staged / "image.json").write_text(json.dumps(meta, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)  # atomic: a half-built image is never seen as built
    return image
