"""The README's scenario example is a valid scenario: the documentation cannot drift from the schema."""

from __future__ import annotations

from conftest import REPO

import vsim


def test_the_readme_example_scenario_loads_and_runs_briefly() -> None:
    text = (REPO / "README.md").read_text()
    start = text.index("```yaml\nname: quickstart") + len("```yaml\n")
    example = text[start:text.index("```", start)]
    scenario = vsim.parse_scenario(example, overrides=["duration=1 h"])
    result = vsim.run(scenario)
    assert result.summary["hosts"] == 16 and result.summary["sim_time_s"] == 3600.0
