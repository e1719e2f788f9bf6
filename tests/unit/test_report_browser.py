"""report.html opened in a real browser: no JavaScript errors, every figure drawn, nothing fetched.

Each report comes from a real run of a small scenario chosen to give the report a known set of
sections. A copy of the page gets two scripts: one at the top of <head> that records errors
(uncaught exceptions, rejected promises, console.error) before plotly.js runs, and one at the end
that, once the page has loaded and plotly has drawn, writes what it found as JSON into a
<pre id="test-result">. Headless Chromium loads the copy with name resolution switched off (the
page must work offline) and dumps the DOM, which the test parses.

Chromium comes from the system (tools/install-test-deps.sh installs it on Debian/Ubuntu as root);
without it these tests skip.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import AVAILABILITY_TINY
from test_report_storage import STORAGE_TINY

import vsim
from vsim.report import write_report

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def browser() -> str:
    """The first Chromium on PATH that runs (a snap stub in a container does not); else skip."""
    found = [path for name in BROWSERS if (path := shutil.which(name))]
    if not found:
        pytest.skip("no Chromium (chromium, chromium-browser or google-chrome) on PATH: run "
                    "tools/install-test-deps.sh as root to install it")
    for path in found:
        try:
            done = subprocess.run([path, "--version"], capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and "chrom" in done.stdout.lower():
            return path
    pytest.skip(f"{', '.join(found)} found but none runs (`--version` failed): install "
                "Chromium from a distribution package, not a snap stub")


# The figures each section of the report draws (run_report.py), by the section's anchor, in the
# order the page has them. The summary and events sections are tables only.
SECTION_FIGURES: dict[str, set[str]] = {
    "sec-summary": set(),
    "sec-datacenter": {"fig-dc-power", "fig-dc-cpu", "fig-dc-vms"},
    "sec-heatmap": {"fig-host-heatmap"},
    "sec-ready": {"fig-ready-hist", "fig-ready-time"},
    "sec-timeslice": {"fig-timeslice-ready", "fig-timeslice-latency"},
    "sec-memory": {"fig-memory-swapped", "fig-memory-slowdown", "fig-memory-time",
                   "fig-memory-swap-traffic"},
    "sec-storage": {"fig-storage-fill", "fig-storage-throughput", "fig-storage-paused",
                    "fig-storage-deploys", "fig-storage-boots", "fig-storage-boot-storm"},
    "sec-availability": {"fig-avail-rto", "fig-avail-capacity", "fig-avail-data-loss"},
    "sec-energy": {"fig-host-energy"},
    "sec-jobs": {"fig-job-times"},
    "sec-migrations": {"fig-migration-timeline", "fig-migration-time", "fig-migration-downtime"},
    "sec-network": {"fig-network-links", "fig-network-busiest", "fig-network-unserved"},
    "sec-moves": {"fig-moves-waves"},
    "sec-events": set(),
}
EVERY_RUN = {"sec-summary", "sec-datacenter", "sec-heatmap", "sec-ready", "sec-energy",
             "sec-events"}

# A fluid datacenter and nothing else: the sections every run has.
PLAIN = """
name: browser-plain
seed: 1
duration: 2 h
period: 10 min
hosts:
  - {name: h, count: 3, cores: 8, core_speed: 2 GHz, ram: 64 GiB}
vms:
  - {name: web, count: 12, vcpus: 2, ram: 4 GiB, workload: day}
workloads:
  day: {kind: synthetic, step: 10 min, mean: 40%, noise: {sd: 10%, correlation: 0.5}}
"""

# Every optional section but availability: two memory-modelled hosts at overcommit ratios 1 and 2
# (the second swaps), a time-sliced core with three busy vCPUs, a rack host drained by live
# migration, and jobs.
EVERYTHING = """
name: browser-everything
seed: 1
duration: 2 h
period: 10 min
hosts:
  - {name: m1, cores: 8, core_speed: 2 GHz, ram: 16 GiB, memory: {preset: esxi, swap: ssd}}
  - {name: m2, cores: 8, core_speed: 2 GHz, ram: 16 GiB, memory: {preset: esxi, swap: ssd}}
  - {name: ts, cores: 1, core_speed: 2 GHz, ram: 64 GiB,
     hypervisor: {scheduler: timeslice, preset: ideal, window: 5 s}}
  - {name: rack, count: 2, cores: 8, core_speed: 2 GHz, ram: 32 GiB, network: 10 Gbit/s}
vms:
  - {name: d-m1, count: 4, vcpus: 1, ram: 4 GiB, workload: cpu, hosts: m1,
     memory: {active: {workload: busy}}}
  - {name: d-m2, count: 8, vcpus: 1, ram: 4 GiB, workload: cpu, hosts: m2,
     memory: {active: {workload: busy}}}
  - {name: sliced, count: 3, vcpus: 1, ram: 1 GiB, workload: cpu, hosts: ts}
  - {name: worker, count: 4, vcpus: 2, ram: 2 GiB, workload: cpu, hosts: rack}
workloads:
  cpu: {kind: constant, level: 40%}
  busy: {kind: synthetic, step: 10 min, mean: 55%, noise: {sd: 5%, correlation: 0.5}}
placement: {policy: first-fit, ram_overcommit: 2, cpu_overcommit: 4}
maintenance:
  - {hosts: [rack-0], start: 30 min, max_concurrent: 2, until: 90 min}
jobs:
  - {vms: worker, count: 4, threads: 1, length: 2000000 MI}
"""

# Availability: a host failure restarted by HA under admission control, then the loss of the
# production site failed over to the recovery site by a DR plan; two Monte Carlo replications.
AVAILABILITY = AVAILABILITY_TINY.replace("name: avail-tiny", "name: browser-availability")

# Storage, networks and moves: the report tests' scenario (a move in two waves over a shared
# uplink, linked clones that boot at start, a VM that fills a small datastore), with CPU load.
STORAGE = STORAGE_TINY

RUNS = {
    "plain": (PLAIN, EVERY_RUN),
    "everything": (EVERYTHING, EVERY_RUN | {"sec-timeslice", "sec-memory", "sec-jobs",
                                            "sec-migrations"}),
    "availability": (AVAILABILITY, EVERY_RUN | {"sec-availability"}),
    "storage": (STORAGE, EVERY_RUN | {"sec-storage", "sec-migrations", "sec-network",
                                      "sec-moves"}),
}

# Recorders, first in <head> so they see errors raised while plotly.js itself loads.
PROBE_HEAD = """<script>
window.__probe = {errors: []};
window.addEventListener("error", function (e) {
  window.__probe.errors.push("error: " + (e.message || String(e)) + " at " +
                             (e.filename || "?") + ":" + (e.lineno || "?"));
});
window.addEventListener("unhandledrejection", function (e) {
  window.__probe.errors.push("unhandled rejection: " + String(e.reason));
});
(function () {
  var original = console.error;
  console.error = function () {
    window.__probe.errors.push("console.error: " +
                               Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();
</script>"""

# After load, and a moment for plotly (its drawing finishes asynchronously): per figure div,
# whether plotly drew its SVG, how many traces it holds, its size and its section.
PROBE_TAIL = """<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var figures = [];
    document.querySelectorAll(".plotly-graph-div, [id^='fig-']").forEach(function (div) {
      var box = div.getBoundingClientRect();
      var section = div.closest("section");
      figures.push({
        id: div.id,
        section: section ? section.id : null,
        svg: div.querySelector(".main-svg") !== null,
        traces: (div._fullData || []).length,
        width: box.width,
        height: box.height
      });
    });
    var sections = [];
    document.querySelectorAll("main > section").forEach(function (s) { sections.push(s.id); });
    var out = document.createElement("pre");
    out.id = "test-result";
    out.textContent = JSON.stringify({
      plotly: typeof window.Plotly === "object" ? window.Plotly.version : null,
      errors: window.__probe.errors,
      figures: figures,
      sections: sections
    });
    document.body.appendChild(out);
  }, 1500);
});
</script>"""

RESULT = re.compile(r'<pre id="test-result">(.*?)</pre>', re.S)


def probe_page(page: Path, out: Path) -> None:
    """Copy ``page`` to ``out`` with the recording scripts added."""
    text = page.read_text(encoding="utf-8")
    head = text.index("<head>") + len("<head>")
    text = text[:head] + PROBE_HEAD + text[head:]
    end = text.rindex("</body>")
    out.write_text(text[:end] + PROBE_TAIL + text[end:], encoding="utf-8")


def open_in_browser(browser: str, page: Path, workdir: Path) -> dict:
    """Load ``page`` (a probed copy) in headless Chromium, offline, and return what it recorded."""
    profile = workdir / f"profile-{page.stem}"
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-extensions", "--disable-background-networking",
        f"--user-data-dir={profile}",
        # Every host name fails to resolve: the page has to work with no network at all.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--window-size=1280,2000", "--virtual-time-budget=10000",
        "--dump-dom", page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    found = RESULT.search(done.stdout)
    assert found, (f"{Path(browser).name} wrote no result for {page.name} (exit {done.returncode});"
                   f" stderr ends:\n{done.stderr[-2000:]}")
    return json.loads(html.unescape(found.group(1)))


class _Resources(HTMLParser):
    """Every resource a page's markup would load from a file or the network (script src, link
    href, img/iframe src; data: URIs are part of the page); text inside <script> (plotly.js
    itself) is not markup and is not looked at."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "img": "src", "iframe": "src", "link": "href"}.get(tag)
        self.loaded += [f"{tag} {value}" for key, value in attrs
                        if key == wanted and value and not value.startswith("data:")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[vsim.Result, Path]]:
    """One real run of each scenario and its report.html, written as ``vsim run`` writes it."""
    root = tmp_path_factory.mktemp("reports")
    out = {}
    for name, (text, _) in RUNS.items():
        path = root / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        result = vsim.run(vsim.load_scenario(path))
        page = root / name / "report.html"
        write_report(page, result.tables, result.summary, result.meta)
        out[name] = (result, page)
    return out


@pytest.fixture(scope="module")
def reports(runs) -> dict[str, Path]:
    return {name: page for name, (_, page) in runs.items()}


def test_scenarios_give_the_data_their_sections_need(runs) -> None:
    """The runs hold what makes each optional section appear, so a section missing in the browser
    is the report's fault, not the scenario's."""
    everything = runs["everything"][0]
    memory = everything.summary["memory"]
    assert len(memory["hosts"]) == 2 and memory["swap_out_bytes"] > 0
    assert everything.summary["timeslice"]["hosts"]
    assert (everything.tables["migrations"]["outcome"] == "completed").any()
    assert everything.tables["jobs"]["finish_s"].notna().any()
    avail = runs["availability"][0]
    assert (avail.tables["outages"]["how"] == "dr").any()
    storage = runs["storage"][0]
    assert storage.summary["storage"]["vms_paused"] > 0 and len(storage.tables["boots"])
    assert len(storage.tables["deploys"]) and len(storage.tables["moves"])
    assert (storage.tables["vm_traffic"]["unserved_frac"] > 0).any()
    for name in ("plain", "availability"):
        assert "memory" not in runs[name][0].summary and "timeslice" not in runs[name][0].summary
        assert runs[name][0].tables.get("jobs") is None


@pytest.mark.parametrize("name", list(RUNS))
def test_report_loads_nothing_from_elsewhere(reports, name: str) -> None:
    parser = _Resources()
    parser.feed(reports[name].read_text(encoding="utf-8"))
    assert parser.loaded == []


@pytest.mark.parametrize("name", list(RUNS))
def test_report_renders_every_figure_without_errors(browser, reports, name: str,
                                                    tmp_path) -> None:
    page = tmp_path / "probed.html"
    probe_page(reports[name], page)
    seen = open_in_browser(browser, page, tmp_path)

    assert seen["plotly"], "plotly.js did not load"
    assert seen["errors"] == []
    sections = RUNS[name][1]
    # The run's sections are the ones the scenario exercises, in the report's order.
    assert seen["sections"] == [s for s in SECTION_FIGURES if s in sections]
    expected = {fig: sec for sec in sections for fig in SECTION_FIGURES[sec]}
    # Every figure div on the page, each in its section ...
    assert {f["id"]: f["section"] for f in seen["figures"]} == expected
    # ... and each drawn: plotly's SVG, at least one trace, a box with a size.
    not_drawn = [f["id"] for f in seen["figures"]
                 if not (f["svg"] and f["traces"] > 0 and f["width"] > 0 and f["height"] > 0)]
    assert not_drawn == []
    # The static page declares the same figures the browser found (none hidden from the probe).
    declared = set(re.findall(r'<div id="(fig-[^"]+)"', reports[name].read_text(encoding="utf-8")))
    assert declared == set(expected)


def test_probe_catches_script_errors_and_undrawn_figures(browser, reports, tmp_path) -> None:
    """The harness itself: a page with a thrown error, a console.error, a rejected promise and a
    figure div plotly never drew is reported as such."""
    broken = tmp_path / "broken.html"
    text = reports["plain"].read_text(encoding="utf-8")
    end = text.rindex("</main>")
    broken.write_text(
        text[:end]
        + '<section id="sec-broken"><div id="fig-broken" class="plotly-graph-div"></div>'
        + "<script>console.error('drawn wrong'); Promise.reject('no data');"
        + "throw new Error('boom');</script></section>"
        + text[end:],
        encoding="utf-8",
    )
    page = tmp_path / "probed.html"
    probe_page(broken, page)
    seen = open_in_browser(browser, page, tmp_path)
    errors = "\n".join(seen["errors"])
    assert "boom" in errors and "drawn wrong" in errors and "no data" in errors
    figures = {f["id"]: f for f in seen["figures"]}
    assert not figures["fig-broken"]["svg"] and figures["fig-broken"]["traces"] == 0
    assert figures["fig-dc-power"]["svg"]  # the real figures still drew

