"""Scenario files: the schema, loading with clear errors, and building runtime objects."""

from __future__ import annotations

from typing import Any

from vsim.scenario.build import RunSetup, build
from vsim.scenario.loader import (
    LoadedScenario,
    apply_overrides,
    load_scenario,
    parse_scenario,
    scenario_from_data,
)
from vsim.scenario.schema import Scenario

__all__ = [
    "LoadedScenario",
    "RunSetup",
    "Scenario",
    "apply_overrides",
    "build",
    "json_schema",
    "load_scenario",
    "parse_scenario",
    "scenario_from_data",
]


def json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario format (for editor completion and validation)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vsim scenario"
    return schema
