"""The names scripts and notebooks import from vsim, pinned: removing or renaming one breaks
users' code, so it must be a deliberate change to this list (and the changelog), never a side
effect of a refactoring."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = {
    "vsim": ["LoadedScenario", "Result", "ScenarioError", "VsimError", "__version__",
             "load_scenario", "parse_scenario", "run"],
    "vsim.validate": ["Validation", "default_calibration", "read_measured", "validate"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_the_public_names_are_exactly_the_pinned_ones(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is listed in __all__ but missing"


def test_the_public_functions_keep_their_signatures() -> None:
    import vsim
    import vsim.validate

    def params(fn: object) -> list[str]:
        return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]

    assert params(vsim.load_scenario)[:2] == ["path", "overrides"]
    assert params(vsim.run)[:2] == ["scenario", "seed"]
    assert params(vsim.validate.validate) == ["kind", "measured", "calibration", "model"]
    assert params(vsim.validate.read_measured) == ["folder", "kind"]


def test_every_notebook_imports_only_public_names() -> None:
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                         if c["cell_type"] == "code")
        for module, names in re.findall(r"^from (vsim[\w.]*) import ([^\n(]+)", code, re.M):
            assert module in PUBLIC, f"{notebook.name} imports from the non-public {module}"
            for name in (n.strip() for n in names.split(",")):
                assert name in PUBLIC[module], f"{notebook.name}: {module}.{name} is not public"
