"""vsim's build: pure Python, plus the hot loops compiled with Cython (the time-slicing model's
slice loop, the migration fabric's kernels).

The modules listed below are ordinary Python; their ``.pxd`` files give Cython the C types, and
the compiled modules give the same results several times faster (see ``vsim/compiled.py``).
Without a C compiler, or without Cython, vsim installs and runs the Python modules instead, with
a warning here.
"""

import hashlib
import json
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

PACKAGES = {
    Path("vsim/model/timeslice"): ("parts", "host", "common", "credit", "fair"),
    Path("vsim/model/kernels"): ("rounds", "bottleneck", "maxmin"),
}
COMPILED = [str(package / f"{m}.py") for package, modules in PACKAGES.items() for m in modules]


def source_digests(package: Path) -> dict[str, str]:
    """SHA-256 of each compiled module's source: vsim uses a package's compiled modules only
    while their source is still this (vsim/compiled.py)."""
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for m in PACKAGES[package] for f in (package / f"{m}.py", package / f"{m}.pxd")}


class BuildOptional(build_ext):
    """Build the compiled modules if this machine can; never fail the install for them."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler failure leaves the Python build
            print(f"warning: vsim's compiled modules were not built ({exc}); "
                  "the Python build will run, several times slower", file=sys.stderr)
            return
        for package in PACKAGES:  # beside the compiled modules: in place, or in the wheel
            ext = next((e for e in self.extensions
                        if e.name.startswith(".".join(package.parts) + ".")), None)
            if ext is not None:
                built = Path(self.get_ext_fullpath(ext.name)).parent
                (built / "_compiled.json").write_text(
                    json.dumps(source_digests(package), indent=1) + "\n")


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("warning: Cython is not installed; vsim's compiled modules run as Python",
              file=sys.stderr)
        return []
    try:
        return cythonize(COMPILED, quiet=True,
                         compiler_directives={"language_level": 3, "annotation_typing": False})
    except Exception as exc:  # Cython cannot translate them: the Python build runs
        print(f"warning: vsim's compiled modules were not translated ({exc}); "
              "the Python build will run, several times slower", file=sys.stderr)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildOptional})
