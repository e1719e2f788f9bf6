"""``vsim sweep``: a grid of what-ifs on one scenario, with replications, on local processes or a
Dask cluster, resumable by running the same command again."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["register"]


class _Bar:
    """Runs finished out of all, on stderr; starts at those already done when resuming."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet = label, quiet
        self.bar: Any = None

    def __call__(self, finished: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=finished, desc=self.label, unit="run",
                            disable=self.quiet or None, leave=False, file=sys.stderr)
        else:
            self.bar.update(finished - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def register(main: click.Group, guarded: Callable[..., Any]) -> None:
    """Adds this module's commands to ``main``."""

    @main.command("sweep")
    @click.argument("scenario")
    @click.option("--axis", "axes", multiple=True, required=True, metavar="KEY=V1,V2,...",
                  help="A field to sweep and its values, as for `vsim run --set` "
                       "(e.g. --axis hosts.0.count=20,24,28 --axis placement.policy=first-fit,"
                       "best-fit). Commas inside [...] or {...} belong to a value. Repeatable: the "
                       "grid is every combination, first axis slowest.")
    @click.option("--set", "fixed", multiple=True, metavar="KEY=VALUE",
                  help="Override a field at every point, as for `vsim run --set` (repeatable).")
    @click.option("--replications", type=click.IntRange(min=1), default=1, show_default=True,
                  help="Runs per point; replication r of every point has the same seed.")
    @click.option("--seed", type=click.IntRange(min=0), default=None,
                  help="First replication's seed (default: the scenario's); the others are "
                       "drawn from it.")
    @click.option("--executor", type=click.Choice(["local", "dask"]), default=None,
                  help="Local processes (default), or Dask: a local cluster, or the one at "
                       "--scheduler.")
    @click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                  help="A running Dask scheduler (implies --executor dask). Its workers write "
                       "the run folders themselves: they must see the same filesystem as this "
                       "machine (and have vsim installed).")
    @click.option("--workers", type=click.IntRange(min=1), default=None,
                  help="Processes for the local executor or a local Dask cluster (default: every "
                       "core; 1 runs everything in this process). Ignored with --scheduler.")
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="Sweep folder (default: results/<scenario>/sweep-<UTC time>). Give an "
                       "existing one to resume it: only the missing runs are run.")
    @click.option("--retry-failed", is_flag=True, help="Run failed runs again when resuming.")
    @click.option("--reports", is_flag=True, help="Write report.html in every run folder "
                                                   "(off by default: it costs more than a small run).")
    @click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
    @guarded
    def sweep_cmd(scenario: str, axes: tuple[str, ...], fixed: tuple[str, ...],
                  replications: int, seed: int | None,
                  executor: str | None, scheduler: str | None, workers: int | None,
                  out: Path | None, retry_failed: bool, reports: bool, quiet: bool) -> None:
        """Run SCENARIO over a grid of field values, REPLICATIONS times each.

        Writes SWEEP_DIR/sweep.json (the grid), SWEEP_DIR/runs/pNNN-rNN/ (one result folder per
        run) and SWEEP_DIR/index.parquet (one row per run: its axis values and headline figures),
        and prints SWEEP_DIR. Every value is checked before anything runs. Interrupted sweeps
        (even killed) resume by running the same command with the same --out. Exit status 1 when
        a run failed (its error is in the index and in runs/<run-id>.failed.json).
        """
        from vsim.cli import _resolve
        from vsim.experiments.executors import make_executor, warm_up
        from vsim.experiments.sweep import default_folder, plan_sweep, run_sweep
        from vsim.runner import check_output

        kind = executor or ("dask" if scheduler else "local")
        preload = ("vsim.experiments.sweep", "vsim.runner")
        warm_up(kind, scheduler, preload)  # a local cluster's workers get ready while we plan
        plan = plan_sweep(_resolve(scenario), list(axes), replications, seed, fixed)
        folder = out if out is not None else default_folder(plan.name)
        check_output(folder, may_exist=True)  # a sweep resumes into the folder it wrote
        report = None
        if reports:
            from vsim.report import write_report

            report = write_report
        runner = make_executor(kind, workers, scheduler, preload=preload)
        bar = _Bar(f"{plan.name} sweep", quiet)
        try:
            outcome = run_sweep(plan, folder, runner, retry_failed=retry_failed, report=report,
                                progress=bar)
            where = runner.describe()  # while a Dask client can still be asked
        finally:
            bar.close()
            runner.close()
        click.echo(
            f"sweep of {plan.name}: {outcome.total} runs ({outcome.total // replications} "
            f"points x {replications}): {outcome.ran} done now, {outcome.skipped} skipped as "
            f"already done, {outcome.failed} failed"
            + (f" (see {folder / 'runs'}/*.failed.json)" if outcome.failed else "")
            + f"; {outcome.wall_s:.1f} s on {where}", err=True)
        click.echo(str(folder))
        if outcome.failed:
            sys.exit(1)
