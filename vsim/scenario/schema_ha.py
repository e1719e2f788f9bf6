"""The scenario format for failures, HA and disaster recovery (part of :mod:`vsim.scenario.schema`)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsim.model.failures import DISTRIBUTIONS
from vsim.policies.admission import ADMISSION_POLICIES
from vsim.scenario.quantities import (
    BandwidthLimit,
    Bytes,
    Delay,
    Fraction,
    Frequency,
    Interval,
    Time,
)

__all__ = ["BootSpec", "DrSpec", "FailureSpec", "HaSpec", "ReplicationSpec"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DurationDistribution(_Strict):
    """A distribution of durations given by its mean."""

    distribution: Literal["exponential", "weibull", "lognormal", "fixed"] = "exponential"
    mean: Interval
    shape: float = Field(1.0, gt=0.0, description="weibull: the shape k (below 1: early "
                         "failures dominate; above 1: wear-out); lognormal: sigma")


assert set(DISTRIBUTIONS) == {"exponential", "weibull", "lognormal", "fixed"}


class FailureSpec(_Strict):
    """Hosts that fail: each on its own (an MTBF), all together (a rack, a power domain, a site),
    at fixed instants, or as a trace of observed outages."""

    name: str | None = None
    hosts: str | list[str] | None = Field(None, description="all, a host group, or host names")
    site: str | None = Field(None, description="every host of this site, failing together: a "
                             "site loss")
    together: bool = Field(False, description="the hosts fail at once (a correlated failure)")
    time_to_failure: Interval | DurationDistribution | None = Field(
        None, description="a duration: the mean of exponential times to failure (MTBF) of each "
        "host (of the domain, when together); or a distribution")
    at: Time | list[Time] | None = Field(None, description="fixed failure instants")
    between: tuple[Time, Time] | None = Field(None, description="one failure at a random "
                                               "instant between these two times")
    repair: Delay | DurationDistribution = Field(
        math.inf, description="time to repair: a fixed duration, a distribution, or never")
    trace: str | None = Field(None, description="a CSV file of outages with columns host "
                              "(a host or group name), start and duration (seconds or with "
                              "units), relative to the scenario file")

    @model_validator(mode="after")
    def _one_source(self) -> FailureSpec:
        sources = [k for k in ("time_to_failure", "at", "between", "trace")
                   if getattr(self, k) is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of time_to_failure, at, between or trace (got "
                             f"{', '.join(sources) or 'none'})")
        if self.between is not None and not self.between[0] < self.between[1]:
            raise ValueError("between: the first time must come before the second")
        if self.trace is None and (self.hosts is None) == (self.site is None):
            raise ValueError("give either hosts or site")
        if self.trace is not None and (self.hosts is not None or self.site is not None):
            raise ValueError("a trace names its hosts itself: drop hosts and site")
        return self


class BootSpec(_Strict):
    """A VM's boot after a restart: it reads ``io`` from its datastore (shared with every other
    boot of the host and the site), then initialises for ``init``."""

    io: Bytes = Field(512 * 2.0**20, description="bytes read from disk to boot")
    read_rate: BandwidthLimit = Field(200 * 2.0**20, description="one guest's read rate")
    init: Time = Field(30.0, description="time the guest initialises after its reads")


class AdmissionSpec(_Strict):
    """vSphere-style admission control for ordinary power-ons."""

    policy: Literal[tuple(ADMISSION_POLICIES)] = Field(  # type: ignore[valid-type]
        "slots", description="; ".join(f"{k}: {v[0]}" for k, v in ADMISSION_POLICIES.items()))
    host_failures: int | None = Field(None, ge=1, description="slots: host failures the cluster "
                                      "tolerates (default 1); percentage: derive the reserve "
                                      "from this many of the largest hosts")
    cpu: Fraction | None = Field(None, description="percentage: CPU reserved for failover")
    memory: Fraction | None = Field(None, description="percentage: memory reserved")
    slot_cpu: Frequency | None = Field(None, description="slots: cap on the CPU slot size")
    slot_memory: Bytes | None = Field(None, description="slots: cap on the memory slot size")
    hosts: str | list[str] | None = Field(None, description="failover-hosts: a host group or "
                                          "host names kept for HA restarts")

    @model_validator(mode="after")
    def _fits_policy(self) -> AdmissionSpec:
        allowed = {"slots": {"host_failures", "slot_cpu", "slot_memory"},
                   "percentage": {"host_failures", "cpu", "memory"},
                   "failover-hosts": {"hosts"}, "none": set()}[self.policy]
        given = {k for k in ("host_failures", "cpu", "memory", "slot_cpu", "slot_memory", "hosts")
                 if getattr(self, k) is not None}
        if given - allowed:
            raise ValueError(f"{', '.join(sorted(given - allowed))} does not apply to the "
                             f"{self.policy} policy (it takes: {', '.join(sorted(allowed)) or 'nothing'})")
        if self.policy == "failover-hosts" and self.hosts is None:
            raise ValueError("the failover-hosts policy needs hosts: a host group or names")
        if self.policy == "percentage" and self.host_failures is not None and (
                self.cpu is not None or self.memory is not None):
            raise ValueError("give either host_failures or cpu/memory percentages, not both")
        return self


class HaSpec(_Strict):
    """High availability: failed hosts' VMs restart on the surviving hosts of their site."""

    admission: AdmissionSpec = AdmissionSpec(policy="none")
    detection: Time = Field(15.0, description="from a host failure to the first restart")
    retry_delays: list[Time] = Field(
        [120.0, 240.0, 480.0, 480.0, 480.0], description="waits between restart attempts of a "
        "VM that found no room (vSphere: 2, 4, 8, 8, 8 min); after the last, only a host "
        "coming back tries again")
    wait_for: Literal["placed", "booted"] = Field(
        "placed", description="the next restart priority starts once the previous one is "
        "placed, or booted")
    tier_delay: Time = Field(0.0, description="extra wait between restart priorities")
    boot: BootSpec = BootSpec()


class ReplicationSpec(_Strict):
    mode: Literal["async", "sync"] = "async"
    rpo: Interval = Field(900.0, description="async: the replication interval")
    max_rate: BandwidthLimit = Field(math.inf, description="per VM")


class RecoveryGroupSpec(_Strict):
    name: str
    vms: list[str] = Field(description="VM groups recovered together")
    after: list[str] | None = Field(None, description="groups that must be up first; default: "
                                    "the group before (none for the first)")
    delay: Time = 0.0


class DrSpec(_Strict):
    """A disaster-recovery plan: replicate a site's VMs to another and fail over when it is lost."""

    name: str
    site: str = Field(description="the protected site")
    to: str = Field(description="the recovery site")
    replication: ReplicationSpec = ReplicationSpec()
    detection: Time = Field(300.0, description="until the site is declared lost")
    decision: Time = Field(0.0, description="then until the plan starts (people deciding)")
    groups: list[RecoveryGroupSpec] = Field(min_length=1)
    failback: Delay = Field(math.inf, description="after the site is back, move the VMs home "
                              "by live migration this much later; never: they stay")

    @model_validator(mode="after")
    def _groups_known(self) -> DrSpec:
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("recovery group names must be unique")
        for g in self.groups:
            for a in g.after or []:
                if a not in names or names.index(a) >= names.index(g.name):
                    raise ValueError(f"group {g.name!r} comes after {a!r}, which is not an "
                                     "earlier group of this plan")
        if self.site == self.to:
            raise ValueError("the recovery site must differ from the protected site")
        return self
