"""The pieces of the guest image that need no QEMU: the initramfs format and the kernel payload."""

from __future__ import annotations

import lzma
import shutil
import subprocess
from pathlib import Path

import pytest

from vsim.kvm.host import HostError
from vsim.kvm.image import cpio_newc, extract_vmlinux
from vsim.kvm.qemu import Guest, GuestSpec


def test_cpio_newc_is_read_back_by_cpio(tmp_path: Path) -> None:
    if shutil.which("cpio") is None:
        pytest.skip("cpio is not installed (apt-get install cpio) to read the archive back")
    archive = cpio_newc([("bin", 0o040755, b""), ("bin/hello", 0o100755, b"#!/bin/sh\necho hi\n"),
                         ("bin/sh", 0o120777, b"hello"), ("odd", 0o100644, b"x" * 5)])
    (tmp_path / "a.cpio").write_bytes(archive)
    listing = subprocess.run(["cpio", "-itv", "-F", "a.cpio"], cwd=tmp_path, capture_output=True,
                             text=True, check=True).stdout
    assert [line.split()[-1] for line in listing.splitlines() if "->" not in line] == [
        "bin", "bin/hello", "odd"]
    assert "bin/sh -> hello" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "-F", str(tmp_path / "a.cpio")], cwd=out, check=True,
                   capture_output=True)
    assert (out / "bin" / "hello").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "odd").read_bytes() == b"xxxxx"
    assert (out / "bin" / "hello").stat().st_mode & 0o777 == 0o755


def test_the_kernel_is_the_xz_payload_of_the_bzimage() -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 64
    bzimage = b"setup code" * 100 + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"trailer"
    assert extract_vmlinux(bzimage) == elf
    with pytest.raises(HostError, match="not xz-compressed"):
        extract_vmlinux(b"no payload here")


def test_workload_arguments_cannot_reach_the_kernel_command_line_unchecked() -> None:
    assert GuestSpec("g", ("dirty", "1048576", "4096", "0")).append().endswith(
        "vsim=dirty,1048576,4096,0")
    with pytest.raises(HostError, match="not plain words"):
        GuestSpec("g", ("spin", "1 init=/bin/sh")).append()


def test_a_line_the_guest_is_still_writing_is_not_read(tmp_path: Path) -> None:
    # The serial console is a file QEMU appends to while the experiments read it: a read can end
    # inside a line ("vsim touch t=14.27942" before " pages=..." arrives), which must not count.
    guest = Guest(GuestSpec("g", ("touch",)), tmp_path / "g", None)  # type: ignore[arg-type]
    guest.serial_path.write_text("booting\nvsim ready t=1.0\nvsim touch t=2.5 pages=100\n"
                                 "vsim touch t=3.5")
    records = guest.records()
    assert [(r.kind, r.fields) for r in records] == [
        ("ready", {"t": "1.0"}), ("touch", {"t": "2.5", "pages": "100"})]
    with guest.serial_path.open("a") as f:
        f.write(" pages=180\n")
    assert guest.records()[-1].fields == {"t": "3.5", "pages": "180"}
