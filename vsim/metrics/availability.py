"""Availability results: the ``outages`` and ``host_failures`` tables, the ``availability``
section of ``summary.json``, and its spread over Monte Carlo replications.

An outage's downtime is what the VM's users saw: from its host's failure until the VM had booted
again (its RTO as achieved); a VM still down at the end of the run is counted until then and marked
not restarted (a censored observation). Its data-loss window is the RPO as achieved: zero for a
restart on shared storage, the time since the last replicated recovery point for a DR failover.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vsim.model.datacenter import Datacenter
from vsim.model.interfaces import RunTotals

__all__ = ["availability_summary", "distribution", "host_failure_columns", "outage_columns",
           "over_replications"]

Columns = dict[str, Any]


def outage_columns(totals: RunTotals, dc: Datacenter, replication: int = 0) -> Columns:
    recs = totals.outages
    v, h = dc.vms, dc.hosts
    end = totals.sim_time_s
    vm = np.array([r.vm for r in recs], dtype=np.int64)
    failed = np.array([r.failed_s for r in recs], dtype=float)
    up = np.array([r.up_s for r in recs], dtype=float)
    departed = np.array([r.how == "departed" for r in recs], dtype=bool)
    until = np.where(np.isnan(up), np.where(departed, v.end_s[vm] if vm.size else up, end), up)
    host = np.array([r.host for r in recs], dtype=np.int64)
    new = np.array([r.new_host for r in recs], dtype=np.int64)
    return {
        "replication": np.full(len(recs), replication, dtype=np.int32),
        "vm": vm.astype(np.int32),
        "name": [v.name[i] for i in vm],
        "group": [v.group[i] for i in vm],
        "priority": v.priority[vm].astype(np.int32),
        "cause": [r.cause for r in recs],
        "kind": [r.kind for r in recs],
        "failed_s": failed,
        "host": host.astype(np.int32),
        "site": [dc.site_names[h.site[x]] for x in host],
        "placed_s": np.array([r.placed_s for r in recs], dtype=float),
        "up_s": up,
        "new_host": new.astype(np.int32),
        "new_site": [dc.site_names[h.site[x]] if x >= 0 else "" for x in new],
        "how": [r.how for r in recs],
        "restarted": ~np.isnan(up),
        "attempts": np.array([r.attempts for r in recs], dtype=np.int32),
        "downtime_s": until - failed,
        "data_loss_s": np.array([r.data_loss_s for r in recs], dtype=float),
    }


def host_failure_columns(totals: RunTotals, dc: Datacenter, replication: int = 0) -> Columns:
    recs = totals.host_failures
    h = dc.hosts
    host = np.array([r.host for r in recs], dtype=np.int64)
    failed = np.array([r.failed_s for r in recs], dtype=float)
    back = np.array([r.back_s for r in recs], dtype=float)
    return {
        "replication": np.full(len(recs), replication, dtype=np.int32),
        "host": host.astype(np.int32),
        "name": [h.name[i] for i in host],
        "site": [dc.site_names[h.site[i]] for i in host],
        "process": [r.process for r in recs],
        "kind": [r.kind for r in recs],
        "failed_s": failed,
        "back_s": back,
        "down_s": np.where(np.isnan(back), totals.sim_time_s, back) - failed,
    }


def distribution(x: np.ndarray) -> dict[str, float | None]:
    """Count, mean, median, 95th percentile and maximum of ``x`` (NaN left out)."""
    x = x[~np.isnan(x)]
    if x.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}
    return {"n": int(x.size), "mean": float(x.mean()), "p50": float(np.percentile(x, 50)),
            "p95": float(np.percentile(x, 95)), "max": float(x.max())}


def availability_summary(out: Columns, fails: Columns, totals: RunTotals) -> dict[str, Any]:
    """The availability figures of one run (one replication)."""
    restarted = np.asarray(out["restarted"], dtype=bool)
    down = np.asarray(out["downtime_s"], dtype=float)
    how = np.asarray(out["how"], dtype=object)
    prio = np.asarray(out["priority"])
    dr = how == "dr"
    summary: dict[str, Any] = {
        "host_failures": len(fails["host"]),
        "host_down_hours": float(np.sum(fails["down_s"]) / 3600.0),
        "vm_outages": int(restarted.size),
        "vms_affected": int(np.unique(out["vm"]).size),
        "restarted": {k: int(np.count_nonzero(restarted & (how == k)))
                      for k in ("ha", "dr", "repair")},
        "not_restarted": int(np.count_nonzero(~restarted & (how != "departed"))),
        "vm_hours_lost": float(down.sum() / 3600.0),
        "rto_s": distribution(down[restarted]),
        "rto_by_priority": {str(p): distribution(down[restarted & (prio == p)])
                            for p in sorted(set(prio.tolist()), reverse=True)},
        "restart_attempts_max": int(np.max(out["attempts"], initial=0)),
        "admission": {"refused": totals.admission_refused, "clusters": totals.admission},
    }
    if dr.any():
        summary["data_loss_s"] = distribution(np.asarray(out["data_loss_s"], dtype=float)[dr])
    if totals.replication:
        summary["replication"] = totals.replication
    return summary


# The figures compared across replications, and where they are in one run's summary.
_ACROSS = {
    "vm_hours_lost": lambda s: s["vm_hours_lost"],
    "vm_outages": lambda s: s["vm_outages"],
    "not_restarted": lambda s: s["not_restarted"],
    "rto_p95_s": lambda s: s["rto_s"]["p95"],
    "rto_max_s": lambda s: s["rto_s"]["max"],
    "data_loss_max_s": lambda s: s.get("data_loss_s", {}).get("max"),
    "admission_refused": lambda s: s["admission"]["refused"],
}


def over_replications(per_run: list[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """Mean, standard deviation and a Student-t confidence interval of each figure over the
    replications (replications where a figure is undefined, e.g. no outage, are left out)."""
    out: dict[str, Any] = {"n": len(per_run), "confidence": confidence}
    for name, get in _ACROSS.items():
        values = np.array([np.nan if get(s) is None else get(s) for s in per_run], dtype=float)
        values = values[~np.isnan(values)]
        if values.size == 0:
            continue
        mean = float(values.mean())
        sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
        if values.size > 1 and sd > 0:
            # Student's t quantile from scipy.special, imported here: scipy.stats costs half a
            # second to import and scipy.special a seventh, and most runs have one replication.
            from scipy.special import stdtrit

            half = stdtrit(values.size - 1, (1 + confidence) / 2) * sd / math.sqrt(values.size)
            lo, hi = mean - half, mean + half
        else:
            lo = hi = mean
        out[name] = {"n": int(values.size), "mean": mean, "sd": None if math.isnan(sd) else sd,
                     "ci_low": float(lo), "ci_high": float(hi)}
    return out
