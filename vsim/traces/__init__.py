"""Workload sources: trace readers and the synthetic generator, all producing a DemandTable."""

from vsim.traces.planetlab import (
    PLANETLAB_DAYS,
    default_planetlab_path,
    list_planetlab_days,
    read_planetlab,
)
from vsim.traces.synthetic import SyntheticSpec
from vsim.traces.synthetic import generate as generate_synthetic
from vsim.traces.table import DemandTable

__all__ = [
    "PLANETLAB_DAYS",
    "DemandTable",
    "SyntheticSpec",
    "default_planetlab_path",
    "generate_synthetic",
    "list_planetlab_days",
    "read_planetlab",
]
