"""Workload sources: trace readers (PlanetLab, Bitbrains GWA-T-12, Azure V1, Alibaba 2018) and the
synthetic generator, all producing a DemandTable."""

from vsim.traces.alibaba import read_alibaba, read_alibaba_machines
from vsim.traces.azure import read_azure
from vsim.traces.bitbrains import read_bitbrains
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
    "read_alibaba",
    "read_alibaba_machines",
    "read_azure",
    "read_bitbrains",
    "read_planetlab",
]
