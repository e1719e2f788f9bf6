"""The README's scenario example is a valid scenario: the documentation cannot drift from the schema."""

from __future__ import annotations

import pytest
from conftest import REPO

import vsim


def test_the_readme_example_scenario_runs_and_does_what_it_says() -> None:
    text = (REPO / "README.md").read_text()
    start = text.index("```yaml\nname: example") + len("```yaml\n")
    example = text[start:text.index("```", start)]
    result = vsim.run(vsim.parse_scenario(example))
    s = result.summary
    assert s["hosts"] == 16 and s["vms"] == 40 and s["vms_unplaced"] == 0
    # The drain of four hosts at 1 d ends inside its window (until 28 h), every VM moved.
    (drain,) = s["maintenance"]
    assert drain["unplaced"] == 0 and drain["migrations"] == drain["vms"] > 0
    assert drain["drained_s"] is not None and drain["drained_s"] < 4 * 3600


def test_the_readme_timeslice_example_runs() -> None:
    text = (REPO / "README.md").read_text()
    start = text.index("```python\nimport numpy as np\nfrom vsim.model.timeslice") + len("```python\n")
    example = text[start:text.index("```", start)]
    names: dict = {}
    exec(compile(example, "README.md", "exec"), names)  # the example as a user would paste it
    r = names["r"]
    # Two hogs of equal weight share what the web vCPU leaves: about (1 - 0.05) / 2 each.
    assert r.counters["run_s"][1:] / 10.0 == pytest.approx([0.475, 0.475], abs=0.02)
    assert len(r.latencies_s[0]) > 500  # 0.05 / 0.5 ms = 100 wake-ups per second


def test_the_readme_storage_example_is_a_valid_part_of_a_scenario() -> None:
    text = (REPO / "README.md").read_text()
    start = text.index("```yaml\ndatastores:\n") + len("```yaml\n")
    example = text[start:text.index("```", start)]
    head = ("name: storage-example\nduration: 10 h\nperiod: 10 min\nhosts:\n"
            "  - {name: h, count: 10, cores: 64, core_speed: 2 GHz, ram: 1 TiB}\n")
    result = vsim.run(vsim.parse_scenario(head + example))
    boots = result.tables["boots"]
    assert len(boots) == 600 and boots["boot_s"].min() >= 800 / 150 + 60 - 1e-6
    assert set(result.tables["deploys"]["clone"]) == {"linked"}
    assert (result.tables["events"]["kind"] == "snapshot_taken").any()
