"""A run's report.html, built from its result tables only.

``build_report(tables, summary, meta)`` returns the HTML text of one self-contained page (plotly.js
inlined once, no network access needed to open it); ``write_report(path, ...)`` writes it. The
reductions behind the figures are in :mod:`vsim.report.aggregate`.
"""

from vsim.report.aggregate import (
    host_energy_kwh,
    host_util_heatmap,
    ready_quantiles_over_time,
    vm_ready_fraction,
)
from vsim.report.run_report import build_report, write_report

__all__ = [
    "build_report",
    "host_energy_kwh",
    "host_util_heatmap",
    "ready_quantiles_over_time",
    "vm_ready_fraction",
    "write_report",
]
