"""The scenario format: a pydantic schema with units parsed at load and unknown fields refused.

Quantities are written with their unit ("16 GiB", "2.6 GHz", "5 min") or as plain numbers in the
base unit; the schema turns them into floats in SI base units. ``vsim schema`` prints the JSON
Schema of this model for editor completion.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from vsim.model.power import POWER_TABLES
from vsim.policies import PLACEMENT_POLICIES
from vsim.units import parse_quantity

__all__ = ["Scenario", "unknown_name"]


def unknown_name(what: str, name: str, known: Iterable[str]) -> str:
    """'unknown X 'name'; did you mean 'Y'? known: ...' for names chosen from a registry."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(known)})"


def _quantity(kind: str, example: str, *, allow: tuple[str, ...] = ()) -> Any:
    def parse(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in allow:
            return math.inf
        return parse_quantity(value, kind)

    extra = f" or one of {', '.join(allow)}" if allow else ""
    return Annotated[
        float,
        BeforeValidator(parse),
        WithJsonSchema({
            "anyOf": [{"type": "string"}, {"type": "number"}],
            "description": f"a {kind} quantity such as {example!r} (plain numbers: base unit){extra}",
        }),
    ]


Time = _quantity("time", "5 min")
Bytes = _quantity("bytes", "16 GiB")
Frequency = _quantity("frequency", "2.6 GHz")
Power = _quantity("power", "250 W")
Work = _quantity("work", "10000 MI")
Fraction = _quantity("fraction", "35%")
Limit = _quantity("frequency", "4 GHz", allow=("unlimited", "none"))
Lifetime = _quantity("time", "6 h", allow=("forever", "never", "inf"))
Duration = _quantity("time", "2 d", allow=("jobs-done",))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(Strict):
    name: str


class PowerSpec(Strict):
    """Linear (idle and max), a named SPECpower table, or a table of watts at even load steps."""

    idle: Power | None = None
    max: Power | None = None
    spec: str | None = Field(None, description=f"one of: {', '.join(POWER_TABLES)}")
    table: list[Power] | None = Field(None, description="watts at 0%, ..., 100% load, evenly spaced")
    off: Power = 0.0

    @model_validator(mode="after")
    def _one_kind(self) -> PowerSpec:
        kinds = [self.idle is not None or self.max is not None, self.spec is not None,
                 self.table is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of: idle and max (linear), spec (a named "
                             "SPECpower table), or table (watts at evenly spaced loads)")
        if kinds[0] and (self.idle is None or self.max is None):
            raise ValueError("a linear power model needs both idle and max")
        if kinds[0] and self.max < self.idle:  # type: ignore[operator]
            raise ValueError("max power is below idle power")
        if self.spec is not None and self.spec not in POWER_TABLES:
            raise ValueError(f"unknown SPECpower table {self.spec!r}; known: {', '.join(POWER_TABLES)}")
        if self.table is not None and len(self.table) < 2:
            raise ValueError("a power table needs at least two points (0% and 100% load)")
        return self

    def curve(self) -> list[float]:
        if self.spec is not None:
            return list(POWER_TABLES[self.spec])
        if self.table is not None:
            return list(self.table)
        return [self.idle, self.max]  # type: ignore[list-item]


class HostGroup(Strict):
    name: str
    count: int = Field(1, ge=1)
    site: str | None = None
    cores: int = Field(ge=1)
    core_speed: Frequency
    ram: Bytes
    power: PowerSpec = PowerSpec(idle=100.0, max=250.0)
    boot_time: Time = 120.0
    initially: Literal["on", "off"] = "on"

    @model_validator(mode="before")
    @classmethod
    def _yaml_booleans(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare on/off as a boolean.
        if isinstance(data, dict) and isinstance(data.get("initially"), bool):
            data = {**data, "initially": "on" if data["initially"] else "off"}
        return data


Shares = Annotated[
    float | Literal["low", "normal", "high"],
    Field(description="ESXi-style per-vCPU shares: low=500, normal=1000, high=2000 per vCPU, or a number"),
]


class VmGroup(Strict):
    name: str
    count: int | None = Field(None, ge=1, description="default: one VM per series of a trace workload")
    vcpus: int = Field(1, ge=1)
    ram: Bytes
    vcpu_speed: Frequency | None = Field(None, description="default: the fastest host core")
    shares: Shares = "normal"
    reservation: Frequency = 0.0
    limit: Limit = math.inf
    template: str | None = None
    priority: int = Field(0, description="queued VMs are placed in priority order, highest first")
    workload: str | None = Field(None, description="a name under workloads; none: idle")
    lifetime: Lifetime | None = Field(None, description="overrides the workload's lifetimes")


class Diurnal(Strict):
    amplitude: float = Field(0.0, ge=0.0, description="relative swing around the mean")
    peak: Time = 14 * 3600.0


class Noise(Strict):
    sd: Fraction = 0.0
    correlation: float = Field(0.0, ge=0.0, lt=1.0, description="AR(1) coefficient per sample")


class Bursts(Strict):
    every: Time = Field(description="mean time between bursts of one VM")
    height: Fraction
    duration: Time


class Arrivals(Strict):
    mean_interarrival: Time


class LifetimeSpec(Strict):
    mean: Time
    distribution: Literal["exponential", "lognormal", "fixed"] = "exponential"
    sigma: float = Field(1.0, gt=0.0)


class SyntheticWorkload(Strict):
    kind: Literal["synthetic"]
    step: Time = 300.0
    mean: Fraction = 0.3
    mean_spread: float = Field(0.0, ge=0.0, le=1.0)
    diurnal: Diurnal = Diurnal()
    noise: Noise = Noise()
    bursts: Bursts | None = None
    arrivals: Arrivals | None = None
    lifetime: LifetimeSpec | None = None


class PlanetLabWorkload(Strict):
    kind: Literal["planetlab"]
    day: str
    path: str | None = Field(None, description="compact .npz or raw folder; default: the shipped data")

    @model_validator(mode="before")
    @classmethod
    def _day_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("day"), int):
            data = {**data, "day": str(data["day"])}
        return data


class ConstantWorkload(Strict):
    kind: Literal["constant"]
    level: Fraction


Workload = Annotated[
    SyntheticWorkload | PlanetLabWorkload | ConstantWorkload, Field(discriminator="kind")
]


class JobGroup(Strict):
    vms: str = Field("all", description="a VM group name, or all")
    count: int = Field(ge=1)
    threads: int = Field(1, ge=1)
    length: Work = Field(description="work per thread, e.g. '10000 MI' (one instruction per cycle)")
    submit: Time = 0.0


class Placement(Strict):
    policy: str = Field("first-fit", description=f"one of: {', '.join(PLACEMENT_POLICIES)}")
    cpu_overcommit: float = Field(1.0, gt=0.0, description="vCPUs per physical core")
    ram_overcommit: float = Field(1.0, gt=0.0, description="VM memory per byte of host RAM")

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, name: str) -> str:
        if name not in PLACEMENT_POLICIES:
            raise ValueError(unknown_name("placement policy", name, PLACEMENT_POLICIES))
        return name


class PowerManagementSpec(Strict):
    power_on_when_needed: bool = True
    idle_off_after: Lifetime = Field(math.inf, description="switch empty hosts off after this; never: keep on")


class Output(Strict):
    vms_table: bool = Field(True, description="per-VM rows every period (large for big runs)")
    hosts_table: bool = True
    report: bool = True


class Scenario(Strict):
    """A datacenter, its VMs and workloads, the policies, and how long to run."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = Field(0, ge=0)
    duration: Duration = Field(description="e.g. '2 d', or jobs-done: until every job has finished")
    period: Time = Field(300.0, gt=0.0, description="reporting period of the tables")
    sites: list[Site] = Field(default_factory=list)
    hosts: list[HostGroup] = Field(min_length=1)
    vms: list[VmGroup] = Field(default_factory=list)
    workloads: dict[str, Workload] = Field(default_factory=dict)
    jobs: list[JobGroup] = Field(default_factory=list)
    placement: Placement = Placement()
    power_management: PowerManagementSpec = PowerManagementSpec()
    output: Output = Output()
