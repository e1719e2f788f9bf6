"""A small synchronous client for QEMU's machine protocol (QMP) over a Unix socket.

QMP is JSON objects, one per line: a greeting, then ``{"execute": ..., "arguments": ...}``
answered by ``{"return": ...}`` or ``{"error": ...}``, with asynchronous ``{"event": ...}`` lines in
between (kept in :attr:`QmpClient.events`). The backend needs only that, synchronously, so it does
not pull in an asyncio client.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from vsim.kvm.host import HostError

__all__ = ["QmpClient", "QmpError"]


class QmpError(HostError):
    """QEMU answered a command with an error."""


class QmpClient:
    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:  # QEMU creates the socket a moment after it starts
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.settimeout(timeout)
                self._sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self._sock.close()
                if time.monotonic() > deadline:
                    raise HostError(f"QEMU's QMP socket {path} did not open within {timeout:.0f} s",
                                    "see the guest's QEMU log in the error above") from None
                time.sleep(0.02)
        self._file = self._sock.makefile("rwb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise HostError(f"{path} does not speak QMP")
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise HostError(f"QEMU closed its QMP socket {self.path} (it exited)")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = {k.replace("_", "-"): v for k, v in arguments.items()}
        self._file.write(json.dumps(message).encode() + b"\n")
        self._file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                err = reply["error"]
                raise QmpError(f"QEMU refused {command}: {err.get('desc', err)}")
            elif "return" in reply:
                return reply["return"]

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass
