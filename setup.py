"""vsim's build: pure Python, plus the time-slicing model's slice loop compiled with Cython.

The modules listed below are ordinary Python; their ``.pxd`` files give Cython the C types, and
the compiled modules give the same results several times faster (see
``vsim/model/timeslice/__init__.py``). Without a C compiler, or without Cython, vsim installs
and runs the Python modules instead, with a warning here.
"""

import hashlib
import json
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

PACKAGE = Path("vsim/model/timeslice")
MODULES = ("parts", "host", "common", "credit", "fair")
COMPILED = [str(PACKAGE / f"{m}.py") for m in MODULES]


def source_digests() -> dict[str, str]:
    """SHA-256 of each compiled module's source: vsim uses the compiled modules only while their
    source is still this (vsim/model/timeslice/__init__.py)."""
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for m in MODULES for f in (PACKAGE / f"{m}.py", PACKAGE / f"{m}.pxd")}


class BuildOptional(build_ext):
    """Build the compiled modules if this machine can; never fail the install for them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler failure leaves the Python build
            print(f"warning: vsim's compiled time-slicing model was not built ({exc}); "
                  "the Python build will run, several times slower", file=sys.stderr)
            return
        if self.extensions:  # beside the compiled modules: in place, or in the wheel
            built = Path(self.get_ext_fullpath(self.extensions[0].name)).parent
            (built / "_compiled.json").write_text(json.dumps(source_digests(), indent=1) + "\n")


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is not installed; vsim's time-slicing model runs as Python",
              file=sys.stderr)
        return []
    return cythonize(COMPILED, quiet=True,
                     compiler_directives={"language_level": 3, "annotation_typing": False})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildOptional})
