"""A KVM workspace's folder survives no Ctrl-C, whenever it comes (no QEMU needed here).

The real-guest test (tests/kvm/test_guests.py) interrupts ``vsim kvm measure`` at random moments;
one moment it could not hit reliably is the one between the workspace's folder being made and
the ``with`` statement taking charge of it; another, a Ctrl-C while the workspace cleans up.
Here a SIGINT is sent at exactly those moments, in a process with numpy's threads running (a
signal sent to the process may go to any of its threads).
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

import vsim.kvm.qemu as qemu
from vsim.kvm.image import GuestImage

np.ones((256, 256)) @ np.ones((256, 256))  # start the numerical library's threads, if it has any
IMAGE = GuestImage(Path("vmlinux"), Path("initrd"), "linux-image", "busybox", "key")


@pytest.fixture
def tmp_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(qemu, "qemu_binary", lambda: "/bin/true")
    return tmp_path


def test_ctrl_c_just_after_the_folder_is_made_removes_it(tmp_only: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_then_ctrl_c(**kwargs: str) -> str:
        made.append(real_mkdtemp(**kwargs))
        os.kill(os.getpid(), signal.SIGINT)
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt), qemu.Workspace(IMAGE):
        pytest.fail("the with body must not run: Ctrl-C came first")
    assert made and not Path(made[0]).exists()
    assert list(tmp_only.iterdir()) == []
    # Ctrl-C is handled as before, not left held.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_cleaning_up_still_removes_the_folder(tmp_only: Path) -> None:
    undone = []
    with pytest.raises(KeyboardInterrupt), qemu.Workspace(IMAGE) as ws:
        # A change to the host undone on close, during which Ctrl-C comes; the change made
        # after it is undone first, the one before it after it.
        ws.on_close(lambda: undone.append("first"))
        ws.on_close(lambda: os.kill(os.getpid(), signal.SIGINT))
        ws.on_close(lambda: undone.append("last"))
    assert undone == ["last", "first"]
    assert list(tmp_only.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_workspace_makes_its_folder_on_entry_and_removes_it_on_exit(tmp_only: Path) -> None:
    ws = qemu.Workspace(IMAGE)
    assert list(tmp_only.iterdir()) == []
    with ws:
        assert ws.folder.parent == tmp_only and (ws.folder / "owner.pid").read_text() == str(os.getpid())
        assert signal.getsignal(signal.SIGTERM) is qemu._on_sigterm
    assert list(tmp_only.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is not qemu._on_sigterm
