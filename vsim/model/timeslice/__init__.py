"""The quantum-level CPU model: vCPUs on physical CPUs, timeslice by timeslice, under a Xen
credit or Linux CFS policy (see :mod:`.host`).

The modules of the slice loop are plain Python, and installing vsim also compiles them with
Cython (their ``.pxd`` files give the C types), which makes the loop several times faster and
changes no result. The compiled modules are used when present and built from the source that is
here (see ``_compiled_is_current``); ``VSIM_PURE_PYTHON=1`` in the environment forces the Python
ones (for a debugger or a profiler). ``COMPILED`` says which are running.
"""

import hashlib
import importlib.util
import json
import os
import sys
import warnings
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path

_HERE = Path(__file__).parent
_COMPILED_MODULES = ("parts", "host", "common", "credit", "fair")


def _built(module: str) -> list[Path]:
    return [p for suffix in EXTENSION_SUFFIXES for p in _HERE.glob(module + suffix)]


def _compiled_is_current() -> bool:
    """Every module is compiled, and from the source that is here now: the build records the
    SHA-256 of each module's .py and .pxd in _compiled.json (an installed wheel has no .pxd)."""
    record = _HERE / "_compiled.json"
    if not record.exists() or not all(_built(m) for m in _COMPILED_MODULES):
        return False
    for name, digest in json.loads(record.read_text()).items():
        source = _HERE / name
        if source.exists() and hashlib.sha256(source.read_bytes()).hexdigest() != digest:
            return False
    return True


_NAMES = frozenset(f"{__name__}.{m}" for m in _COMPILED_MODULES)


class _SourceFinder(MetaPathFinder):
    """Loads this package's compiled modules from their Python source instead."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname not in _NAMES:
            return None
        return importlib.util.spec_from_file_location(fullname, _HERE / (fullname.rsplit(".", 1)[1] + ".py"))


# All compiled or none: the compiled modules share their C types with each other only.
_WANTED = os.environ.get("VSIM_PURE_PYTHON", "") in ("", "0")
COMPILED = _WANTED and _compiled_is_current()
if not COMPILED:
    if _WANTED and any(_built(m) for m in _COMPILED_MODULES):
        warnings.warn("vsim's compiled time-slicing model was built from another version of "
                      "its source and is not used; rebuild it with `make` or `pip install -e .` "
                      "(the Python build runs meanwhile, with the same results, several times "
                      "slower)", stacklevel=2)
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())

from vsim.model.timeslice.credit import Credit  # noqa: E402
from vsim.model.timeslice.fair import Fair  # noqa: E402
from vsim.model.timeslice.host import HostSlicer  # noqa: E402
from vsim.model.timeslice.parts import (  # noqa: E402
    COUNTERS,
    Policy,
    Profile,
    SliceResult,
    VcpuLoad,
    VmLoad,
)

__all__ = ["COMPILED", "COUNTERS", "Credit", "Fair", "HostSlicer", "Policy", "Profile",
           "SliceResult", "VcpuLoad", "VmLoad"]
