"""``vsim compare``: the summaries of several result folders, side by side as text and HTML."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import vsim_cli
from plotly.offline import get_plotlyjs

import vsim
from vsim.errors import VsimError
from vsim.report.compare import (
    build_comparison_html,
    comparison_table,
    load_summaries,
    write_comparison,
)

SCENARIO = """\
name: pair
seed: 5
duration: 2 h
period: 5 min
hosts:
  - name: std
    count: {hosts}
    cores: 8
    core_speed: 2 GHz
    ram: 64 GiB
    power: {{idle: 100 W, max: 250 W}}
    initially: on
vms:
  - {{name: web, count: 10, vcpus: 2, ram: 4 GiB, workload: flat}}
workloads:
  flat: {{kind: constant, level: 50%}}
placement:
  policy: {policy}
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """Two real result folders of the same scenario (so their labels need the folder names),
    the second with two more hosts, all kept on: more idle power, more energy."""
    root = tmp_path_factory.mktemp("compare")
    a, b = root / "a", root / "b"
    vsim.run(vsim.parse_scenario(SCENARIO.format(hosts=4, policy="first-fit"))).save(a)
    vsim.run(vsim.parse_scenario(SCENARIO.format(hosts=6, policy="worst-fit"))).save(b)
    return a, b


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def relative_energy(a: Path, b: Path) -> str:
    base, other = summary(a)["energy_kwh"], summary(b)["energy_kwh"]
    return f"{100 * (other - base) / base:+.1f} %"


def test_summaries_frame_has_one_row_per_folder(folders) -> None:
    a, b = folders
    frame = load_summaries([a, b])
    assert list(frame.index) == ["pair (a)", "pair (b)"]  # same scenario: folder names added
    for label, folder in zip(frame.index, (a, b), strict=True):
        s = summary(folder)
        assert frame.at[label, "energy_kwh"] == s["energy_kwh"]
        assert frame.at[label, "hosts"] == s["hosts"]
        assert frame.at[label, "sla.slatah"] == s["sla"]["slatah"]
        assert frame.attrs["folders"][label] == str(folder)
    assert frame.at["pair (b)", "hosts"] == 6


def test_labels_are_scenario_names_when_they_differ(folders, tmp_path) -> None:
    a, _ = folders
    other = tmp_path / "other"
    shutil.copytree(a, other)
    data = summary(other)
    data["scenario"] = "renamed"
    (other / "summary.json").write_text(json.dumps(data))
    assert list(load_summaries([a, other]).index) == ["pair", "renamed"]
    # The same folder twice still gets two distinct labels.
    assert load_summaries([a, a]).index.is_unique


def test_text_table_shows_both_runs_and_the_relative_energy_change(folders) -> None:
    a, b = folders
    text = comparison_table(load_summaries([a, b]))
    header = text.splitlines()[0]
    assert "pair (a)" in header and "pair (b)" in header
    energy_rows = [line for line in text.splitlines() if line.startswith("energy (kWh)")]
    assert len(energy_rows) == 2  # the values, then the change against the first run
    assert f"{summary(a)['energy_kwh']:,.2f}" in energy_rows[0]
    assert f"{summary(b)['energy_kwh']:,.2f}" in energy_rows[0]
    change = relative_energy(a, b)
    assert change.startswith("+")  # two more idle hosts cost energy
    assert energy_rows[1].split()[-2:] == change.split()


def test_missing_keys_show_a_dash(folders, tmp_path) -> None:
    a, _ = folders
    old = tmp_path / "old"
    shutil.copytree(a, old)
    data = summary(old)
    del data["sla"], data["host_shutdowns"]  # as in folders written before these existed
    (old / "summary.json").write_text(json.dumps(data))
    text = comparison_table(load_summaries([a, old]))
    slatah = next(line for line in text.splitlines() if line.startswith("SLATAH (%)"))
    assert slatah.split()[-1] == "–"
    assert "–" in build_comparison_html([a, old])


def test_html_is_offline_with_the_table_and_figures(folders) -> None:
    a, b = folders
    page = build_comparison_html([a, b])
    assert page.count(get_plotlyjs()) == 1
    rest = page.replace(get_plotlyjs(), "")
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=", rest)
    for title in ("Energy", "Live migrations and host shutdowns", "SLA violation metrics",
                  "Total power over time", "Hosts powered on over time"):
        assert f'"text":"{title}"' in rest, title
    assert "pair (a)" in rest and "pair (b)" in rest
    assert relative_energy(a, b) in rest


def test_html_without_datacenter_tables_skips_the_time_lines(folders, tmp_path) -> None:
    a, b = folders
    bare = tmp_path / "bare"
    shutil.copytree(b, bare)
    (bare / "datacenter.parquet").unlink()
    page = build_comparison_html([a, bare]).replace(get_plotlyjs(), "")
    assert '"text":"Energy"' in page
    assert "Total power over time" not in page
    assert "datacenter.parquet" in page  # says why the lines are not there


def test_write_comparison_replaces_the_file_whole(folders, tmp_path) -> None:
    a, b = folders
    out = tmp_path / "deeper" / "cmp.html"
    assert write_comparison(out, [a, b]) == out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["cmp.html"]  # no temporary left behind


def test_a_folder_without_summary_is_refused(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VsimError, match=r"empty: not a vsim result folder.*vsim run"):
        load_summaries([empty])
    with pytest.raises(VsimError, match="no such folder"):
        load_summaries([tmp_path / "absent"])


def test_cli_prints_the_table_and_writes_the_page(folders, tmp_path) -> None:
    a, b = folders
    done = vsim_cli("compare", str(a), str(b), "--out", "cmp.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pair (a)" in done.stdout and relative_energy(a, b) in done.stdout
    assert done.stderr.strip() == "cmp.html"
    assert (tmp_path / "cmp.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_refuses_a_folder_that_is_not_a_result(folders, tmp_path) -> None:
    a, _ = folders
    stray = tmp_path / "stray"
    stray.mkdir()
    done = vsim_cli("compare", str(a), str(stray), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(stray) in lines[0] and "not a vsim result folder" in lines[0]
    assert done.stdout == ""  # nothing half-printed
    assert not (tmp_path / "compare.html").exists()
