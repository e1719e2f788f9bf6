"""Storage results: the ``datastores`` table (a row per datastore and period), the ``deploys``
table (a row per VM cloned from a template), the ``boots`` table (a row per VM that booted at
start), and the ``storage`` section of ``summary.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from vsim.metrics.availability import distribution
from vsim.metrics.columns import Categories, Columns
from vsim.model.datacenter import Datacenter

__all__ = ["storage_summary", "storage_tables"]

_CLONES = ("none", "full", "linked")


def storage_tables(records: dict[str, Any], dc: Datacenter) -> dict[str, Columns]:
    names = tuple(records["store_names"])
    rows = dict(records["datastores"])
    rows["datastore"] = Categories(np.asarray(rows["datastore"], dtype=np.int32), names)
    rows["vms_paused"] = np.asarray(rows["vms_paused"], dtype=np.int32)
    d = records["deploys"]
    vm = np.asarray(d["vm"], dtype=np.int64)
    tpl = tuple(records["template_names"])
    deploys: Columns = {
        "vm": vm.astype(np.int32),
        "name": [dc.vms.name[i] for i in vm],
        "group": [dc.vms.group[i] for i in vm],
        "template": Categories(np.asarray(d["template"], dtype=np.int32), tpl),
        "clone": Categories(np.asarray(d["clone"], dtype=np.int32), _CLONES),
        "requested_s": d["requested_s"],
        "deployed_s": d["deployed_s"],
        "deploy_s": d["deployed_s"] - d["requested_s"],
        "bytes_copied": d["bytes_copied"],
        "space_bytes": d["space_bytes"],
    }
    b = records["boots"]
    bvm = np.asarray(b["vm"], dtype=np.int64)
    boots: Columns = {
        "vm": bvm.astype(np.int32),
        "name": [dc.vms.name[i] for i in bvm],
        "began_s": b["began_s"],
        "ended_s": b["ended_s"],
        "boot_s": b["ended_s"] - b["began_s"],
    }
    return {"datastores": rows, "deploys": deploys, "boots": boots}


def storage_summary(records: dict[str, Any], tables: dict[str, Columns]) -> dict[str, Any]:
    """Per datastore: capacity, peak and final use, provisioned (overcommit) and the time it was
    full; deploy and boot times; VMs paused for want of space and for how long in all."""
    cap = records["store_capacity"]
    stores = {}
    rows = tables["datastores"]
    codes = rows["datastore"].codes  # type: ignore[union-attr]
    for s, name in enumerate(records["store_names"]):
        stores[name] = {
            "capacity_bytes": float(cap[s]),
            "peak_used_bytes": float(records["peak_used_bytes"][s]),
            "used_bytes": float(records["used_bytes"][s]),
            "provisioned_bytes": float(records["provisioned_bytes"][s]),
            "overcommit": float(records["provisioned_bytes"][s] / cap[s]),
            "peak_fill_frac": float(records["peak_used_bytes"][s] / cap[s]),
            "peak_transfer_bytes_s": float(np.max(
                np.asarray(rows["transfer_bytes_s"])[codes == s], initial=0.0)),
        }
    paused = records["paused_s"]
    deploys = tables["deploys"]
    return {
        "datastores": stores,
        "deploy_s": distribution(np.asarray(deploys["deploy_s"], dtype=float)),
        "deploy_bytes_copied": float(np.sum(np.asarray(deploys["bytes_copied"], dtype=float))),
        "space_per_deployed_vm_bytes": distribution(np.asarray(deploys["space_bytes"], dtype=float)),
        "boot_s": distribution(np.asarray(tables["boots"]["boot_s"], dtype=float)),
        "vms_paused": int(np.count_nonzero(paused > 0)),
        "vm_hours_paused": float(paused.sum() / 3600.0),
    }
