"""The ``vsim`` command: run scenarios, list them, print the scenario schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vsim.errors import VsimError

__all__ = ["main"]


def _shipped_dir() -> Path:
    repo = Path(__file__).resolve().parents[2] / "scenarios"
    return repo if repo.is_dir() else Path("scenarios")


def _resolve(scenario: str) -> Path:
    """A path, or the name of a shipped scenario ('quickstart', 'planetlab/thr-mmt')."""
    path = Path(scenario)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    shipped = _shipped_dir() / f"{scenario}.yaml"
    return shipped if shipped.exists() else path


class _Progress:
    """A progress bar over simulated time, on stderr, off when not a terminal or --quiet."""

    def __init__(self, label: str, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc=label, unit="‰", disable=quiet or None, leave=False,
                        file=sys.stderr, bar_format="{desc} {bar} {percentage:3.0f}% {elapsed}")
        self.done = 0

    def __call__(self, fraction: float) -> None:
        step = int(fraction * 1000) - self.done
        if step > 0:
            self.bar.update(step)
            self.done += step

    def close(self) -> None:
        self.bar.close()


def _fail(message: str) -> None:
    click.echo(f"vsim: error: {message}", err=True)
    sys.exit(2)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors about the user's input end as one message and exit status 2, not a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VsimError as exc:
            _fail(str(exc))
        except FileExistsError as exc:
            _fail(str(exc))
        except MemoryError as exc:
            _fail(f"this machine has not the memory for this run ({exc}); lower the hosts: "
                  "and vms: counts, or run it on a bigger machine")
        except OSError as exc:  # a full disk, a folder that went away: no traceback for those
            _fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            click.echo("vsim: interrupted; nothing partial was written", err=True)
            sys.exit(130)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vsim")
def main() -> None:
    """vsim: a discrete-event simulator of virtualized datacenters."""


@main.command("run")
@click.argument("scenario")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Random seed, 0 or more (default: the scenario's).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Result folder to create (default: results/<scenario>/<run-id>).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario field, e.g. --set placement.policy=best-fit "
                   "or --set hosts.0.count=30 (repeatable).")
@click.option("--no-report", is_flag=True, help="Skip report.html.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_guarded
def run_cmd(scenario: str, seed: int | None, out: Path | None, overrides: tuple[str, ...],
            no_report: bool, quiet: bool) -> None:
    """Run SCENARIO (a YAML file or a shipped scenario's name) and print its result folder."""
    from vsim.runner import check_output, run
    from vsim.scenario import load_scenario

    loaded = load_scenario(_resolve(scenario), list(overrides))
    # Before the run: a long run must not end in nowhere to write.
    check_output(out if out is not None else Path("results") / loaded.name, may_exist=out is None)
    bar = _Progress(loaded.name, quiet)
    try:
        result = run(loaded, seed, progress=bar)
    finally:
        bar.close()
    extra = {}
    if loaded.spec.output.report and not no_report:
        from vsim.report import write_report

        extra["report.html"] = lambda path: write_report(path, result.tables, result.summary,
                                                         result.meta)
    folder = result.save(out, extra=extra)
    s = result.summary
    if not quiet:
        click.echo(
            f"{s['scenario']}: {s['hosts']} hosts, {s['vms']} VMs, "
            f"{s['sim_time_s'] / 3600:.1f} h simulated in {s['wall_time_s']:.2f} s; "
            f"energy {s['energy_kwh']:.1f} kWh, {s.get('migrations', 0)} migrations"
            + (f", CPU ready {100 * s['cpu_ready_frac_mean']:.2f} % (mean over VMs)"
               if s.get("cpu_ready_frac_mean") is not None else "")
            + (f", unplaced VMs {s['vms_unplaced']}" if "vms_unplaced" in s else "")
            + (f"; {len(s['timeslice']['hosts'])} time-sliced host(s), "
               f"{s['timeslice']['slices']:,} timeslices in {s['timeslice']['windows']:,} windows"
               if s.get("timeslice") else "")
            + (f"; memory on {s['memory']['hosts_modelled']} host(s): "
               f"{s['memory']['swapped_peak_bytes'] / 2**30:.2f} GiB swapped at the peak, "
               f"VMs {100 * (s['memory']['slowdown_mean'] - 1):.1f} % slower on average"
               if s.get("memory") else "")
            + _availability_line(s.get("availability"))
            + _storage_line(s.get("storage"), s.get("network"), s.get("moves")), err=True)
    click.echo(str(folder))


def _storage_line(st: dict | None, net: dict | None, moves: dict | None) -> str:
    """'; datastores up to 87 % full, 12 VMs paused 3.1 h; boots p95 3.6 min; ...'"""
    line = ""
    if st:
        peak = max((d["peak_fill_frac"] for d in st["datastores"].values()), default=0.0)
        line += f"; datastores up to {100 * peak:.0f} % full"
        if st["vms_paused"]:
            line += f", {st['vms_paused']} VM(s) paused {st['vm_hours_paused']:.1f} VM-hours"
        if st["deploy_s"]["n"]:
            line += f", {st['deploy_s']['n']} deploy(s) p95 {st['deploy_s']['p95']:.0f} s"
        if st["boot_s"]["n"]:
            line += f", boots p95 {st['boot_s']['p95']:.0f} s"
    if net and net["busiest_links"]:
        top = net["busiest_links"][0]
        line += (f"; busiest link {top['link']} at {100 * top['peak_utilisation']:.0f} %, VM "
                 f"traffic unserved {100 * net['vm_traffic_unserved_frac']:.2f} %")
    for name, m in (moves or {}).items():
        if m["moved"]:
            line += (f"; move {name}: {m['moved']} of {m['vms']} VMs in {m['waves']} wave(s), "
                     f"{(m['ended_s'] - m['began_s']) / 3600:.1f} h")
        else:
            line += f"; move {name}: none of {m['vms']} VMs moved"
    return line


def _availability_line(a: dict | None) -> str:
    """'; 3 host failures, 24 VM outages, 2.1 VM-hours lost, RTO p95 41 s, ...' for the run line."""
    if not a:
        return ""
    reps = a.get("replications")
    line = (f"; {a['host_failures']} host failure(s), {a['vm_outages']} VM outage(s), "
            f"{a['vm_hours_lost']:.1f} VM-hours lost")
    if a["rto_s"]["p95"] is not None:
        line += f", RTO p95 {a['rto_s']['p95'] / 60:.1f} min"
    if a.get("data_loss_s", {}).get("max") is not None:
        line += f", data loss up to {a['data_loss_s']['max'] / 60:.1f} min"
    if a["not_restarted"]:
        line += f", {a['not_restarted']} not restarted"
    if a["admission"]["refused"]:
        line += f", {a['admission']['refused']} power-on(s) refused by admission control"
    if reps:
        lost = reps["vm_hours_lost"]
        line += (f" (first of {reps['n']} replications; VM-hours lost over all: "
                 f"{lost['mean']:.1f}, {100 * reps['confidence']:.0f} % CI "
                 f"{lost['ci_low']:.1f}-{lost['ci_high']:.1f})")
    return line


@main.command("scenarios")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
def scenarios_cmd(folder: Path | None) -> None:
    """List the shipped scenarios (or those in FOLDER) with their descriptions."""
    import yaml

    root = folder or _shipped_dir()
    files = sorted(root.rglob("*.yaml"))
    if not files:
        _fail(f"no scenario files under {root}")
    width = max(len(str(f.relative_to(root).with_suffix(""))) for f in files)
    for f in files:
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
            text = str(data.get("description", "")).strip().splitlines()
            line = text[0] if text else ""
        except (yaml.YAMLError, AttributeError):
            line = "(not a valid scenario file)"
        click.echo(f"{f.relative_to(root).with_suffix('')!s:<{width}}  {line}")


@main.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the scenario format (for editor completion)."""
    from vsim.scenario import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@main.command("compare")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("compare.html"),
              show_default=True, help="HTML page to write.")
@_guarded
def compare_cmd(results: tuple[Path, ...], out: Path) -> None:
    """Compare result folders side by side: a table on stdout, charts in an HTML page.

    Relative changes are against the first folder given.
    """
    from vsim.report.compare import comparison_table, load_summaries, write_comparison

    # Every folder is checked before anything is printed, so a typo in the last one does not
    # leave a table on stdout that a script would take for the answer.
    table = comparison_table(load_summaries(results))
    written = write_comparison(out, results)
    click.echo(table)
    click.echo(str(written), err=True)


def _register_backends() -> None:
    from vsim.cli import import_cmd, kvm, sweep, sweep_report

    for module in (kvm, sweep, sweep_report, import_cmd):
        module.register(main, _guarded)


_register_backends()

if __name__ == "__main__":
    main()
