"""``vsim sweep-report SWEEP_DIR``: a sweep's means with confidence intervals, as a text table on
stdout and as an HTML report beside the runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def register(main: click.Group, guarded: Callable[..., Any]) -> None:
    """Adds this module's commands to ``main``."""

    @main.command("sweep-report")
    @click.argument("sweep_dir", type=click.Path(path_type=Path))
    @click.option("--metric", "metrics", multiple=True, metavar="NAME",
                  help="A summary figure to aggregate, e.g. energy_kwh or sla.slav (repeatable; "
                       "default: the headline figures and every figure that varies).")
    @click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                  default=0.95, show_default=True, help="Confidence level of the intervals.")
    @click.option("--method", type=click.Choice(["t", "bootstrap"]), default="t",
                  show_default=True,
                  help="Student-t intervals, or seeded percentile-bootstrap intervals.")
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="HTML file to write (default: SWEEP_DIR/sweep-report.html).")
    @guarded
    def sweep_report_cmd(sweep_dir: Path, metrics: tuple[str, ...], confidence: float,
                         method: str, out: Path | None) -> None:
        """Aggregate the sweep in SWEEP_DIR (written by `vsim sweep`): print the mean ± interval
        half-width of the headline figures per point, and write the HTML report."""
        from vsim.experiments.aggregate import aggregate, load_index
        from vsim.report.sweep import REPORT_NAME, build_sweep_report, save_report, sweep_table

        meta, index = load_index(sweep_dir)
        agg = aggregate(index, meta.axes, list(metrics) or None, confidence,
                        "bootstrap" if method == "bootstrap" else "t")
        # The page is written before the table is printed, so a table on stdout means the
        # report exists too.
        path = save_report(out or meta.folder / REPORT_NAME, build_sweep_report(meta, index, agg))
        click.echo(sweep_table(agg, list(metrics) or None))
        click.echo(str(path), err=True)
