"""Which of vsim's compiled modules to use.

Some hot loops are plain Python modules that installing vsim also compiles with Cython (their
``.pxd`` files give the C types): the time-slicing model's slice loop and the migration kernels.
A package of such modules uses its compiled modules only when all are present and were built from
the source that is here now, so that a stale build never shadows an edited module; otherwise it
loads the Python source. ``VSIM_PURE_PYTHON=1`` in the environment forces the Python source (for
a debugger or a profiler).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Iterable
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path

RECORD = "_compiled.json"  # the SHA-256 of each compiled module's sources, written by the build


def _built(here: Path, module: str) -> list[Path]:
    return [p for suffix in EXTENSION_SUFFIXES for p in here.glob(module + suffix)]


def is_current(here: Path, modules: Iterable[str]) -> bool:
    """Every module is compiled, and from the source that is here now (an installed wheel has
    no .pxd, and its record is what it was built from)."""
    record = here / RECORD
    if not record.exists() or not all(_built(here, m) for m in modules):
        return False
    for name, digest in json.loads(record.read_text()).items():
        source = here / name
        if source.exists() and hashlib.sha256(source.read_bytes()).hexdigest() != digest:
            return False
    return True


class _SourceFinder(MetaPathFinder):
    """Loads a package's compiled modules from their Python source instead."""

    def __init__(self, package: str, here: Path, modules: Iterable[str]) -> None:
        self.here = here
        self.names = frozenset(f"{package}.{m}" for m in modules)

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        return importlib.util.spec_from_file_location(
            fullname, self.here / (fullname.rsplit(".", 1)[1] + ".py"))


def use_compiled(package: str, init_file: str, modules: tuple[str, ...], what: str) -> bool:
    """Whether ``package`` (whose ``__init__`` is ``init_file``) runs its compiled ``modules``;
    when it does not, its modules are loaded from their source from now on. All or none: compiled
    modules share their C types with each other only."""
    here = Path(init_file).parent
    wanted = os.environ.get("VSIM_PURE_PYTHON", "") in ("", "0")
    if wanted and is_current(here, modules):
        return True
    if wanted and any(_built(here, m) for m in modules):
        warnings.warn(f"vsim's compiled {what} was built from another version of its source and "
                      "is not used; rebuild it with `make` or `pip install -e .` (the Python "
                      "build runs meanwhile, with the same results, slower)", stacklevel=3)
    if not any(isinstance(f, _SourceFinder) and f.names & {f"{package}.{m}" for m in modules}
               for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder(package, here, modules))
    return False
