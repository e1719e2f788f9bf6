"""`vsim kvm probe | image | measure`, `vsim validate` and `vsim calibrate`: real guests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vsim.errors import VsimError

__all__ = ["register"]

MIB = 2.0**20


def _quantities(kind: str, example: str) -> Callable[[click.Context, click.Parameter, str], list[float]]:
    def parse(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
        from vsim.units import UnitError, parse_quantity

        out = []
        for word in str(value).split(","):
            try:
                out.append(parse_quantity(word.strip(), kind))
            except (UnitError, ValueError):
                raise click.BadParameter(f"{word.strip()!r} is not a {kind} (e.g. {example}; "
                                         "several: a comma-separated list)") from None
            if out[-1] <= 0:
                raise click.BadParameter(f"{word.strip()!r} must be positive")
        return out
    return parse


def _ints(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        out = [int(w) for w in str(value).split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of whole numbers") from None
    if any(v < 1 for v in out):
        raise click.BadParameter("every value must be at least 1")
    return out


def migration_grid(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--memory", default="256MiB", show_default=True,
                     callback=_quantities("bytes", "256MiB"), help="Guest memory (list)."),
        click.option("--working-set", default="64MiB", show_default=True,
                     callback=_quantities("bytes", "64MiB"), help="Memory the guest writes (list)."),
        click.option("--dirty-rate", default="4MiB/s,16MiB/s,48MiB/s", show_default=True,
                     callback=_quantities("bandwidth", "16MiB/s"), help="How fast it writes (list)."),
        click.option("--bandwidth", default="32MiB/s,64MiB/s,128MiB/s", show_default=True,
                     callback=_quantities("bandwidth", "64MiB/s"), help="QEMU max-bandwidth (list)."),
        click.option("--downtime-limit", default="300ms", show_default=True,
                     callback=_quantities("time", "300ms"), help="QEMU downtime-limit."),
        click.option("--max-sent", default=2.5, show_default=True, type=click.FloatRange(min=1.0),
                     help="Give up once this many times the guest's memory is sent."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def cpu_grid(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--guests", default="1,2,3,4", show_default=True, callback=_ints,
                     help="Guests sharing the pinned cores (list)."),
        click.option("--vcpus", default="1", show_default=True, callback=_ints,
                     help="vCPUs per guest (list)."),
        click.option("--cores", default="1", show_default=True, callback=_ints,
                     help="Host cores the guests are pinned to (list)."),
        click.option("--weights", default=None, callback=_optional_floats,
                     help="cgroup cpu weight of each guest, in order and cycled, e.g. 2,1 (root)."),
        click.option("--caps", default=None, callback=_optional_floats,
                     help="cgroup cpu cap of each guest in cores, cycled, e.g. 0.5 (root)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _floats(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    try:
        out = [float(w) for w in str(value).split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if any(v <= 0 for v in out):
        raise click.BadParameter("every value must be positive")
    return out


def _optional_floats(ctx: click.Context, param: click.Parameter,
                     value: str | None) -> tuple[float, ...]:
    return () if value is None else tuple(_floats(ctx, param, value))


def memory_grid(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--ratio", default="0.8,1.0,1.1,1.2,1.3", show_default=True, callback=_floats,
                     help="Working set over the memory the guest may keep resident (list)."),
        click.option("--order", default="random", show_default=True,
                     type=click.Choice(["random", "sequential"]), help="How pages are touched."),
        click.option("--working-set", default="192MiB", show_default=True,
                     callback=_quantities("bytes", "192MiB"), help="Memory the guest touches."),
        click.option("--memory", default="512MiB", show_default=True,
                     callback=_quantities("bytes", "512MiB"), help="Guest memory."),
        click.option("--work", default="2000", show_default=True, callback=_ints,
                     help="Loop iterations of computation between two touches (list). A slower "
                     "toucher lets the host's reclaim find pages to swap; with none (3 M pages/s "
                     "under TCG) the cgroup's OOM killer ends the guest instead."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _memory_points(ratio: list[float], order: str, working_set: list[float],
                   memory: list[float], work: list[int]) -> list[Any]:
    from vsim.kvm.memory import MemoryPoint

    return [MemoryPoint(r, order, working_set[0], memory[0], w) for w in work for r in ratio]


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--repeats", default=1, show_default=True, type=click.IntRange(min=1),
                     help="Measure every point this many times."),
        click.option("--accel", default="auto", show_default=True,
                     type=click.Choice(["auto", "kvm", "tcg"]),
                     help="auto: kvm if a guest boots under it here, else tcg."),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Result folder to create (default: results/<experiment>/<run-id>)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _migration_points(memory: list[float], working_set: list[float], dirty_rate: list[float],
                      bandwidth: list[float], downtime_limit: list[float], max_sent: float) -> list[Any]:
    from vsim.kvm.migration import grid

    return grid(memory, working_set, dirty_rate, bandwidth, downtime_limit_s=downtime_limit[0],
                max_sent=max_sent)


def _cpu_points(guests: list[int], vcpus: list[int], cores: list[int],
                weights: tuple[float, ...], caps: tuple[float, ...]) -> list[Any]:
    from vsim.kvm.cpu import CpuPoint

    return [CpuPoint(g, v, c, weights, caps) for c in cores for v in vcpus for g in guests]


def _say(text: str) -> None:
    click.echo(f"  {text}", err=True)


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n"


def _measure(kind: str, points: list[Any], repeats: int, accel: str, out: Path | None) -> None:
    from vsim.runner import check_output, new_result_folder, write_folder
    from vsim.validate.session import TABLE, measure, prepare

    check_output(out if out is not None else Path("results") / f"kvm-{kind}", may_exist=out is None)
    env = prepare(accel, _say)
    _say(f"{len(points)} point(s) x {repeats} on QEMU {'.'.join(map(str, env.qemu))} ({env.accel})")
    table = measure(kind, env, points, repeats=repeats, progress=_say)
    target = out or new_result_folder(f"kvm-{kind}")
    folder = write_folder(target, {
        f"{TABLE[kind]}.parquet": lambda p: table.to_parquet(p, index=False),
        "meta.json": lambda p: p.write_text(_json_text({"experiment": kind, **env.columns(),
                                                        "image": env.image.describe()})),
    })
    click.echo(table.drop(columns=[c for c in ("accel", "qemu_version", "kernel_package")
                                   if c in table]).to_string(index=False), err=True)
    click.echo(str(folder))


def _validate(kind: str, points: list[Any], repeats: int, accel: str, out: Path | None,
              calibration: Path | None, measured: Path | None, model: str = "fluid") -> None:
    from vsim.report.validation import write_validation
    from vsim.runner import check_output, new_result_folder, write_folder
    from vsim.validate.calibrate import load_calibration
    from vsim.validate.session import (
        TABLE,
        default_calibration,
        measure,
        prepare,
        read_measured,
        validate,
    )

    name = f"validate-{kind}" + ("" if model == "fluid" else f"-{model}")
    check_output(out if out is not None else Path("results") / name, may_exist=out is None)
    calib = load_calibration(calibration) if calibration else default_calibration()
    if measured is not None:
        table = read_measured(measured, kind)
    else:
        env = prepare(accel, _say)
        _say(f"{len(points)} point(s) x {repeats} on QEMU {'.'.join(map(str, env.qemu))} ({env.accel})")
        table = measure(kind, env, points, repeats=repeats, progress=_say)
    result = validate(kind, table, calib, model)
    target = out or new_result_folder(name)
    folder = write_folder(target, {
        f"{TABLE[kind]}.parquet": lambda p: table.to_parquet(p, index=False),
        "predicted.parquet": lambda p: result.predicted.to_parquet(p, index=False),
        "errors.parquet": lambda p: result.errors.to_parquet(p, index=False),
        "summary.json": lambda p: p.write_text(_json_text(result.summary)),
        "validation.html": lambda p: write_validation(p, result.errors, result.summary),
    })
    _print_targets(result.summary)
    click.echo(str(folder))


def _print_targets(summary: dict[str, Any]) -> None:
    from vsim.validate.errors import format_value
    from vsim.validate.session import naive_value

    for metric, t in summary["targets"].items():
        stat = t["statistic"]
        naive = naive_value(summary, metric)
        click.echo(f"  {metric:<11} {stat:<14} vsim {format_value(t['value'], stat, metric):>10}   "
                   f"naive {format_value(naive, stat, metric):>10}   "
                   f"target {format_value(t['limit'], stat, metric):>9}   "
                   f"{'met' if t['met'] else 'MISSED'}", err=True)


def register(main: click.Group, guarded: Callable[..., Any]) -> None:
    @main.group("kvm")
    def kvm() -> None:
        """Real guests under QEMU/KVM: probe the host, build the guest image, measure."""

    @kvm.command("probe")
    @guarded
    def probe_cmd() -> None:
        """What this host offers: QEMU, the accelerator that boots, cgroups, swap, KSM, balloon."""
        from vsim.kvm.image import build_image
        from vsim.kvm.probe import probe

        try:
            image = build_image()
        except VsimError as exc:
            click.echo(f"guest image: {exc}", err=True)
            image = None
        checks = probe(image)
        width = max(len(c.item) for c in checks)
        for c in checks:
            click.echo(f"{c.item:<{width}}  {'yes' if c.ok else 'no ':<3}  {c.detail}\n"
                       f"{'':<{width}}       -> {c.meaning}")

    @kvm.command("image")
    @click.option("--rebuild", is_flag=True, help="Build again even if cached.")
    @guarded
    def image_cmd(rebuild: bool) -> None:
        """Build (or find in the cache) the guest image; print where it is."""
        from vsim.kvm.image import build_image

        image = build_image(rebuild=rebuild)
        for key, value in image.describe().items():
            click.echo(f"{key:<16} {value}")

    @kvm.group("measure")
    def measure_grp() -> None:
        """Run an experiment on real guests and write its measured table."""

    @measure_grp.command("migration")
    @migration_grid
    @common
    @guarded
    def measure_migration_cmd(repeats: int, accel: str, out: Path | None, **grid: Any) -> None:
        """Live migration between two local QEMUs over a grid of configurations."""
        _measure("migration", _migration_points(**grid), repeats, accel, out)

    @measure_grp.command("cpu")
    @cpu_grid
    @common
    @guarded
    def measure_cpu_cmd(repeats: int, accel: str, out: Path | None, **grid: Any) -> None:
        """CPU-bound guests sharing pinned host cores: per-guest share, overhead, steal."""
        _measure("cpu", _cpu_points(**grid), repeats, accel, out)

    @measure_grp.command("memory")
    @memory_grid
    @common
    @guarded
    def measure_memory_cmd(repeats: int, accel: str, out: Path | None, **grid: Any) -> None:
        """A guest touching its working set under a cgroup memory limit with swap (root)."""
        _measure("memory", _memory_points(**grid), repeats, accel, out)

    @measure_grp.command("balloon")
    @click.option("--memory", default="512MiB", show_default=True,
                  callback=_quantities("bytes", "512MiB"), help="Guest memory.")
    @click.option("--working-set", default="128MiB", show_default=True,
                  callback=_quantities("bytes", "128MiB"), help="Memory the guest keeps touching.")
    @click.option("--target", default="384MiB,256MiB", show_default=True,
                  callback=_quantities("bytes", "256MiB"), help="Balloon targets (list).")
    @common
    @guarded
    def measure_balloon_cmd(repeats: int, accel: str, out: Path | None, memory: list[float],
                            working_set: list[float], target: list[float]) -> None:
        """virtio-balloon: inflate to each target and back; time taken and memory returned."""
        _measure("balloon", [{"memory_bytes": memory[0], "working_set_bytes": working_set[0],
                              "targets": target}], repeats, accel, out)

    @measure_grp.command("ksm")
    @click.option("--guests", default=2, show_default=True, type=click.IntRange(min=2),
                  help="Identical guests side by side.")
    @click.option("--memory", default="256MiB", show_default=True,
                  callback=_quantities("bytes", "256MiB"), help="Memory of each.")
    @click.option("--duration", default="20s", show_default=True,
                  callback=_quantities("time", "20s"), help="How long to watch KSM.")
    @click.option("--accel", default="auto", show_default=True,
                  type=click.Choice(["auto", "kvm", "tcg"]))
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="Result folder to create (default: results/kvm-ksm/<run-id>).")
    @guarded
    def measure_ksm_cmd(guests: int, memory: list[float], duration: list[float], accel: str,
                        out: Path | None) -> None:
        """Kernel samepage merging between identical guests (root): memory shared over time."""
        _measure("ksm", [{"guests": guests, "memory_bytes": memory[0],
                          "duration_s": duration[0]}], 1, accel, out)

    calibration_option = click.option(
        "--calibration", type=click.Path(path_type=Path, dir_okay=False), default=None,
        help="Calibration file (default: the one shipped with vsim).")
    measured_option = click.option(
        "--measured", type=click.Path(path_type=Path, file_okay=False), default=None,
        help="Reuse a measured folder instead of measuring.")

    @main.group("validate")
    def validate_grp() -> None:
        """Measure on real guests, simulate the same points, and write the errors."""

    @validate_grp.command("migration")
    @migration_grid
    @common
    @calibration_option
    @measured_option
    @guarded
    def validate_migration_cmd(repeats: int, accel: str, out: Path | None, calibration: Path | None,
                               measured: Path | None, **grid: Any) -> None:
        """vsim's migration model against QEMU live migration (and RAM / bandwidth)."""
        _validate("migration", _migration_points(**grid), repeats, accel, out, calibration, measured)

    @validate_grp.command("cpu")
    @cpu_grid
    @common
    @calibration_option
    @measured_option
    @click.option("--model", type=click.Choice(["fluid", "timeslice"]), default="fluid",
                  show_default=True, help="The CPU model to put to the guests: the fluid share "
                  "or the time-slicing run queue.")
    @guarded
    def validate_cpu_cmd(repeats: int, accel: str, out: Path | None, calibration: Path | None,
                         measured: Path | None, model: str, **grid: Any) -> None:
        """vsim's CPU model against guests sharing pinned cores (and the equal fluid share)."""
        _validate("cpu", _cpu_points(**grid), repeats, accel, out, calibration, measured, model)

    @validate_grp.command("memory")
    @memory_grid
    @common
    @calibration_option
    @measured_option
    @guarded
    def validate_memory_cmd(repeats: int, accel: str, out: Path | None, calibration: Path | None,
                            measured: Path | None, **grid: Any) -> None:
        """vsim's swap model against a guest under a memory limit (and no memory model)."""
        _validate("memory", _memory_points(**grid), repeats, accel, out, calibration, measured)

    @main.command("calibrate")
    @click.argument("measured", nargs=-1, required=True,
                    type=click.Path(path_type=Path, file_okay=False))
    @click.option("--check", multiple=True, type=click.Path(path_type=Path, file_okay=False),
                  help="Measured folder(s) to report errors on (not used for fitting; default: "
                       "every other point of MEASURED is held out).")
    @click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
                  default=Path("calibration.yaml"), show_default=True,
                  help="Calibration file to write.")
    @guarded
    def calibrate_cmd(measured: tuple[Path, ...], check: tuple[Path, ...], out: Path) -> None:
        """Fit the models' free parameters to MEASURED folders and write a calibration file."""
        from vsim.runner import check_output
        from vsim.validate.session import calibrate_folders

        check_output(out, may_exist=True)  # an existing calibration file is replaced
        report = calibrate_folders(list(measured), list(check), out)
        click.echo(report, err=True)
        click.echo(str(out))
