"""Bad input through the real command line: one clear message, exit status 2, no result folder.

Every row runs ``python -m vsim.cli run FILE --out out`` in an empty folder and checks that the
user gets one message (no traceback) naming the file, the line, the dotted field path and what to
do, and that nothing was written: neither ``out`` nor anything under ``results/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import vsim_cli

BASE = """\
name: errors
duration: 1 h
hosts:
  - name: h
    cores: 4
    core_speed: 2 GHz
    ram: 16 GiB
    boot_time: 2 min
vms:
  - name: web
    count: 2
    vcpus: 1
    ram: 2 GiB
    workload: steady
workloads:
  steady: {kind: constant, level: 50%}
placement:
  policy: first-fit
"""

STEADY = "workloads:\n  steady: {kind: constant, level: 50%}\n"


def planetlab(day: str, path: str | None = None) -> str:
    """BASE with its VMs following a PlanetLab day instead of the constant workload."""
    where = f"    path: {path}\n" if path else ""
    return edit(("workload: steady", "workload: pl"),
                (STEADY, f'workloads:\n  pl:\n    kind: planetlab\n    day: "{day}"\n{where}'))


def edit(*pairs: tuple[str, str]) -> str:
    text = BASE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def row(case: str, text: str | None, expected: list[str], *, line_of: str | None = None,
        args: tuple[str, ...] = (), file: str = "scenario.yaml"):
    """One case: the scenario text (None: no file), substrings the message must hold, and the
    text whose line the message must point at (``file:LINE:``)."""
    return pytest.param(text, args, file, expected, line_of, id=case)


CASES = [
    row("malformed-yaml", edit(("    cores: 4", "    cores: [4")),
        ["not valid YAML", "check indentation, colons and quotes"], line_of="core_speed"),
    row("unknown-field", edit(("core_speed:", "core_sped:")),
        ["hosts.0.core_sped", "unknown field 'core_sped'", "did you mean 'core_speed'?"],
        line_of="core_sped"),
    # YAML keeps the last of two equal keys; the first would be lost without a word.
    row("key-given-twice", edit(("    count: 2\n", "    count: 2\n    count: 3\n")),
        ["vms.0.count", "'count' is given twice, on lines 11 and 12", "keep one of them"],
        line_of="count: 3"),
    row("group-name-taken", edit(("vms:\n", "  - {name: h, cores: 2, core_speed: 2 GHz, "
                                  "ram: 8 GiB}\nvms:\n")),
        ["hosts.1.name", "the name 'h' is taken by item 0 of hosts", "give each item its own name"],
        line_of="- {name: h, cores: 2"),
    row("vm-count-not-whole", edit(("count: 2", "count: 2.5")),
        ["vms.0.count", "a VM count is a whole number of at least 1", "got 2.5"],
        line_of="count: 2.5"),
    row("cpu-reservation-above-limit",
        edit(("    vcpus: 1\n", "    vcpus: 1\n    reservation: 2 GHz\n    limit: 1 GHz\n")),
        ["vms.0.reservation", "the CPU reservation (2 GHz) is above the CPU limit (1 GHz)",
         "lower the reservation or raise the limit"], line_of="reservation:"),
    # One vCPU at the host's 2 GHz can use 2 GHz at most.
    row("cpu-reservation-above-the-vcpus",
        edit(("    vcpus: 1\n", "    vcpus: 1\n    reservation: 3 GHz\n")),
        ["vms.0.reservation", "(3 GHz) is more than 1 vCPU at 2 GHz can use",
         "reserve at most 2 GHz"], line_of="reservation:"),
    # Four vCPUs at 3 GHz can use 12 GHz, but the host has 4 cores x 2 GHz = 8 GHz.
    row("cpu-reservation-above-any-host",
        edit(("    vcpus: 1\n", "    vcpus: 4\n    vcpu_speed: 3 GHz\n    reservation: 10 GHz\n")),
        ["vms.0.reservation", "(10 GHz) is more than any host has (8 GHz)",
         "lower the reservation, or add a bigger host"], line_of="reservation:"),
    row("working-set-above-ram",
        edit(("    ram: 2 GiB\n", "    ram: 2 GiB\n    working_set: 4 GiB\n")),
        ["vms.0", "working_set (4 GiB) is more than the VM's RAM (2 GiB)"], line_of="- name: web"),
    row("disk-used-above-size",
        edit(("    ram: 2 GiB\n", "    ram: 2 GiB\n    disks: [{size: 10 GiB, used: 20 GiB}]\n")),
        ["vms.0.disks.0", "used (20 GiB) is more than the disk's size (10 GiB)"],
        line_of="disks:"),
    row("wrong-unit-kind", edit(("core_speed: 2 GHz", "core_speed: 16 GiB")),
        ["hosts.0.core_speed", "unknown frequency unit 'GiB'", "use one of:", "GHz"],
        line_of="core_speed"),
    row("unknown-unit", edit(("boot_time: 2 min", "boot_time: 2 parsecs")),
        ["hosts.0.boot_time", "unknown time unit 'parsecs'", "use one of:", "min"],
        line_of="boot_time"),
    row("unknown-policy", edit(("policy: first-fit", "policy: frist-fit")),
        ["placement.policy", "unknown placement policy 'frist-fit'", "did you mean 'first-fit'?"],
        line_of="policy:"),
    row("unknown-workload", edit(("workload: steady", "workload: stedy")),
        ["vms.0.workload", "unknown workload 'stedy'", "did you mean 'steady'?"],
        line_of="workload: stedy"),
    row("vm-larger-than-any-host", edit(("ram: 2 GiB", "ram: 64 GiB")),
        ["vms.0", "'web'", "larger than any host", "16 GiB", "shrink the VM or add a bigger host"],
        line_of="- name: web"),
    row("missing-planetlab-folder", planetlab("20110303", "no/such/folder"),
        ["workloads.pl.path", "no/such/folder", "PlanetLab data not found",
         "give the compact .npz, a raw root or a day folder"], line_of="path:"),
    row("unknown-planetlab-day", planetlab("20990101"),
        ["workloads.pl.day", "no PlanetLab day '20990101'", "20110303", "pick one of those days"],
        line_of="day:"),
    row("set-workload-date-unknown-day", planetlab("20110303"),
        ["workloads.pl.day", "no PlanetLab day '20990101'", "pick one of those days"],
        args=("--set", "workload.date=20990101"), line_of="day:"),
    row("set-workload-date-without-planetlab", BASE,
        ["workload.date", "PlanetLab workloads, and it has none", "workloads.NAME.day"],
        args=("--set", "workload.date=20110306")),
    row("set-index-out-of-range", BASE,
        ["hosts.3", "no item 3 in a list of 1", "list items count from 0"],
        args=("--set", "hosts.3.count=2")),
    row("set-unknown-name", BASE, ["vms.webb", "no item named 'webb'", "did you mean 'web'?"],
        args=("--set", "vms.webb.count=2")),
    row("set-without-equals", BASE,
        ["override 'hosts.0.count' has no '='", "write --set dotted.key=value"],
        args=("--set", "hosts.0.count")),
    row("set-bad-value", BASE, ["hosts.0.core_speed", "unknown frequency unit 'parsecs'",
                                "--set hosts.0.core_speed"],
        args=("--set", "hosts.0.core_speed=3 parsecs")),
    row("missing-required-field", edit(("    cores: 4\n", "")),
        ["hosts.0.cores", "this field is required", "add it"], line_of="- name: h"),
    row("bad-working-set", edit(("    ram: 2 GiB\n", "    ram: 2 GiB\n    working_set: lots\n")),
        ["vms.0.working_set", "cannot read 'lots' as a working set", "'512 MiB'", "'25%'"],
        line_of="working_set:"),
    row("unknown-no-convergence-action", BASE + "migration: {on_no_convergence: retry}\n",
        ["migration.on_no_convergence", "'force', 'abort', 'auto-converge' or 'postcopy'"],
        line_of="migration:"),
    row("drain-of-an-unknown-host", BASE + "maintenance:\n  - {hosts: [h, g], start: 10 min}\n",
        ["maintenance.0.hosts", "no host 'g'"], line_of="- {hosts"),
    row("jobs-done-without-jobs", edit(("duration: 1 h", "duration: jobs-done")),
        ["duration", "runs until jobs are done, but the scenario has no jobs",
         "give a duration such as '1 d', or add jobs:"], line_of="duration:"),
    row("unknown-workload-kind", edit(("{kind: constant,", "{kind: constnt,")),
        ["workloads.steady", "unknown workload kind 'constnt'", "synthetic, planetlab or constant"],
        line_of="steady: {kind"),
    row("missing-file", None, ["no such scenario file", "`vsim scenarios` lists the shipped ones"],
        file="no-such-scenario.yaml"),
    # Values out of range are refused at load, before anything deep inside divides by them.
    row("synthetic-mean-above-100%",
        edit(("{kind: constant, level: 50%}", "{kind: synthetic, mean: 150%}")),
        ["workloads.steady.mean:", "must be between 0% and 100%", "'150%'"], line_of="steady:"),
    row("synthetic-step-zero",
        edit(("{kind: constant, level: 50%}", "{kind: synthetic, step: 0}")),
        ["workloads.steady.step:", "must be more than zero"], line_of="steady:"),
    row("synthetic-zero-interarrival",
        edit(("{kind: constant, level: 50%}",
              "{kind: synthetic, arrivals: {mean_interarrival: 0}}")),
        ["workloads.steady.arrivals.mean_interarrival:", "must be more than zero"],
        line_of="steady:"),
    row("zero-duration", edit(("duration: 1 h", "duration: 0 s")),
        ["duration:", "must be more than zero", "'0 s'"], line_of="duration:"),
    row("negative-ram", edit(("ram: 2 GiB", "ram: -2 GiB")),
        ["vms.0.ram:", "must be more than zero", "'-2 GiB'"], line_of="-2 GiB"),
    # Six busy 1-vCPU VMs on four cores (2:1 overcommit): contended, so shares matter.
    row("zero-shares", edit(("    vcpus: 1\n", "    vcpus: 1\n    shares: 0\n"),
                            ("count: 2", "count: 6"), ("level: 50%", "level: 100%"))
        + "  cpu_overcommit: 2\n",
        ["vms.0.shares:", "positive number", "0"], line_of="shares:"),
    # The time-slicing model: names from its registries, options that need it.
    row("unknown-hypervisor-preset",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    hypervisor: {scheduler: timeslice, "
              "preset: esx}\n")),
        ["hosts.0.hypervisor", "unknown hypervisor preset 'esx'", "did you mean 'esxi'?"],
        line_of="hypervisor:"),
    row("unknown-timeslice-policy",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    hypervisor: {scheduler: timeslice, "
              "policy: cfs}\n")),
        ["hosts.0.hypervisor.policy", "'credit' or 'fair'"], line_of="hypervisor:"),
    row("timeslice-option-on-fluid-host",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    hypervisor: {policy: credit}\n")),
        ["hosts.0.hypervisor", "policy apply to scheduler: timeslice only",
         "add scheduler: timeslice"], line_of="hypervisor:"),
    # Memory overcommit: names from its presets, values that cannot hold, VMs that cannot start.
    row("unknown-swap-device",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    memory: {swap: flash}\n")),
        ["hosts.0.memory.swap.device", "'hdd', 'ssd' or 'nvme'"], line_of="memory:"),
    row("memory-active-from-unknown-workload",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    memory: {}\n"),
             ("    ram: 2 GiB\n", "    ram: 2 GiB\n    memory: {active: {workload: workdy}}\n")),
        ["vms.0.memory.active.workload", "unknown workload 'workdy'", "known: steady"],
        line_of="active:"),
    row("memory-reservation-above-vm-memory",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    memory: {}\n"),
             ("    ram: 2 GiB\n", "    ram: 2 GiB\n    memory: {reservation: 3 GiB}\n")),
        ["vms.0.memory.reservation", "(3 GiB) is above the VM's memory (2 GiB)",
         "reserve at most the VM's memory"], line_of="reservation:"),
    # The reservation fits (512 MiB + 32 MiB + 1 % of 2 GiB against 16 GiB less ESXi's minFree,
    # 0.06 x 4 + 0.04 x 8 + 0.02 x 4 = 0.64 GiB), but the 1.5 GiB it does not reserve needs swap.
    row("memory-reservation-no-host-can-meet",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    memory: {swap: {size: 1 GiB}}\n"),
             ("    ram: 2 GiB\n", "    ram: 2 GiB\n    memory: {reservation: 512 MiB}\n")),
        ["vms.0.memory", "'web' can start on no host", "1.5 GiB of swap",
         "lower the reservation or give the hosts more RAM or swap"],
        line_of="memory: {reservation: 512"),
    row("memory-reservation-above-limit",
        edit(("    boot_time: 2 min\n", "    boot_time: 2 min\n    memory: {}\n"),
             ("    ram: 2 GiB\n", "    ram: 2 GiB\n    memory: {reservation: 1 GiB, limit: 512 MiB}\n")),
        ["vms.0.memory", "the reservation is above the limit"], line_of="memory: {res"),
    row("vm-host-rule-to-unknown-group", edit(("    vcpus: 1\n", "    vcpus: 1\n    hosts: hh\n")),
        ["vms.0.hosts", "no host group 'hh'", "did you mean 'h'?"], line_of="hosts: hh"),
    # Failures, HA and DR: names that must exist, settings that must fit together.
    row("failures-of-an-unknown-host-group", BASE + "failures:\n  - {hosts: hh, at: 10 min}\n",
        ["failures.0.hosts", "no host group 'hh'", "did you mean 'h'?"], line_of="- {hosts: hh"),
    row("failures-of-an-unknown-site", BASE + "failures:\n  - {site: dc9, at: 10 min}\n",
        ["failures.0.site", "unknown site 'dc9'"], line_of="- {site: dc9"),
    row("failures-with-two-sources",
        BASE + "failures:\n  - {hosts: h, at: 10 min, time_to_failure: 1 y}\n",
        ["failures.0", "give exactly one of time_to_failure, at, between or trace",
         "time_to_failure, at"], line_of="- {hosts: h, at"),
    row("failure-trace-missing", BASE + "failures:\n  - {trace: no-such.csv}\n",
        ["failures.0.trace", "cannot read the failure trace", "no-such.csv",
         "columns host, start, duration"], line_of="- {trace"),
    row("unknown-admission-policy", BASE + "ha:\n  admission: {policy: slot}\n",
        ["ha.admission.policy", "'slots', 'percentage', 'failover-hosts' or 'none'"],
        line_of="admission:"),
    row("admission-setting-of-another-policy",
        BASE + "ha:\n  admission: {policy: slots, cpu: 25%}\n",
        ["ha.admission", "cpu does not apply to the slots policy",
         "host_failures, slot_cpu, slot_memory"], line_of="admission:"),
    row("dr-group-of-an-unknown-vm-group",
        BASE.replace("    ram: 16 GiB\n", "    ram: 16 GiB\n    site: b\n")
        + "sites: [{name: a}, {name: b}]\ndr:\n  - name: p\n    site: a\n    to: b\n"
          "    groups: [{name: g, vms: [webb]}]\n",
        ["dr.0.groups.0.vms", "no VM group 'webb'", "did you mean 'web'?"], line_of="groups:"),
    row("dr-to-an-unknown-site",
        BASE + "sites: [{name: a}]\ndr:\n  - name: p\n    site: a\n    to: c\n"
               "    groups: [{name: g, vms: [web]}]\n",
        ["dr.0.to", "unknown site 'c'"], line_of="to: c"),
]


@pytest.mark.parametrize(("text", "args", "file", "expected", "line_of"), CASES)
def test_bad_input_gets_one_clear_message_and_no_result_folder(
    tmp_path: Path, text: str | None, args: tuple[str, ...], file: str, expected: list[str],
    line_of: str | None,
) -> None:
    if text is not None:
        (tmp_path / file).write_text(text, encoding="utf-8")
    done = vsim_cli("run", file, "--out", "out", *args, cwd=tmp_path, timeout=60)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith("vsim: error: ")
    assert message.count("vsim: error:") == 1
    assert file in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    if line_of is not None:
        assert text is not None
        line = next(i for i, t in enumerate(text.splitlines(), start=1) if line_of in t)
        assert f"{file}:{line}:" in message
    # Nothing written: no --out folder, no results/ folder, no partial folder left behind.
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ([file] if text is not None else [])


def test_a_misspelt_required_field_is_one_problem(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(edit(("core_speed:", "core_sped:")), encoding="utf-8")
    done = vsim_cli("run", "scenario.yaml", "--out", "out", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("vsim: error: scenario.yaml:6: hosts.0.core_sped: unknown field "
                                   "'core_sped' (did you mean 'core_speed'?)")


def test_a_failure_trace_with_a_missing_column_names_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "outages.csv").write_text("host,start\nh-0,1 h\n", encoding="utf-8")
    (tmp_path / "scenario.yaml").write_text(BASE + "failures:\n  - {trace: outages.csv}\n",
                                            encoding="utf-8")
    done = vsim_cli("run", "scenario.yaml", "--out", "out", cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "failures.0.trace" in done.stderr and "outages.csv" in done.stderr
    assert "missing column(s) duration" in done.stderr
    assert not (tmp_path / "out").exists()


def test_workload_date_sets_every_planetlab_day_and_nothing_else() -> None:
    from vsim.scenario.loader import apply_overrides

    data = {"workloads": {"a": {"kind": "planetlab", "day": "20110303"},
                          "b": {"kind": "planetlab", "day": "all", "tile_days": 3},
                          "c": {"kind": "constant", "level": "50%"}}}
    where: list[tuple] = []
    out = apply_overrides(data, ["workload.date=20110306"], where)
    assert out["workloads"]["a"] == {"kind": "planetlab", "day": 20110306}  # typed later
    assert out["workloads"]["b"] == {"kind": "planetlab", "day": 20110306, "tile_days": 3}
    assert out["workloads"]["c"] == data["workloads"]["c"]
    assert data["workloads"]["a"]["day"] == "20110303"  # the input is left as it was
    assert where == [("workloads", "a", "day"), ("workloads", "b", "day")]


def test_one_problem_found_twice_is_said_once() -> None:
    from vsim.errors import Problem, ScenarioError

    twice = ScenarioError([Problem("no such day", path="workloads.pl.day", line=3)] * 2, file="s.yaml")
    assert str(twice) == "s.yaml:3: workloads.pl.day: no such day"
    two = ScenarioError([Problem("a"), Problem("b")], file="s.yaml")
    assert str(two).startswith("2 problems in s.yaml:")
