"""The canonical demand table every workload source produces (trace readers and the generator)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SAMPLED_COLUMNS", "DemandTable"]

# The optional per-sample columns besides cpu, in the order they are documented.
SAMPLED_COLUMNS = ("memory", "disk_read", "disk_write", "net_rx", "net_tx")


@dataclass(frozen=True)
class DemandTable:
    """CPU demand of ``n`` series (one per VM) sampled every ``step_s`` seconds from time 0.

    ``cpu[i, k]`` is the demand of series ``i`` over ``[k*step_s, (k+1)*step_s)`` as a fraction of
    the VM's CPU capacity (vCPUs x per-vCPU speed), in [0, 1]. ``start_s`` and ``lifetime_s`` say
    when each series' VM arrives and how long it stays (``inf``: until the end of the run).

    Traces that record more than CPU fill the optional columns, sampled like ``cpu``: ``memory``
    (share of the VM's memory in use, 0..1), ``disk_read``, ``disk_write``, ``net_rx`` and
    ``net_tx`` (bytes/s); and the VM's size where the trace gives it, ``vcpus`` and
    ``ram_bytes`` (one value per series). None where the trace has no such column.
    """

    step_s: float
    cpu: np.ndarray  # float64, shape (n, T)
    names: tuple[str, ...]
    source: str
    start_s: np.ndarray = field(default=None)  # type: ignore[arg-type]  # float64 (n,)
    lifetime_s: np.ndarray = field(default=None)  # type: ignore[arg-type]  # float64 (n,)
    memory: np.ndarray | None = None  # float64 (n, T), 0..1
    disk_read: np.ndarray | None = None  # float64 (n, T), bytes/s
    disk_write: np.ndarray | None = None
    net_rx: np.ndarray | None = None
    net_tx: np.ndarray | None = None
    vcpus: np.ndarray | None = None  # int64 (n,)
    ram_bytes: np.ndarray | None = None  # float64 (n,)

    def __post_init__(self) -> None:
        cpu = np.ascontiguousarray(self.cpu, dtype=np.float64)
        if cpu.ndim != 2:
            raise ValueError(f"cpu must be 2-D (series x samples), got shape {cpu.shape}")
        n = cpu.shape[0]
        if len(self.names) != n:
            raise ValueError(f"{len(self.names)} names for {n} series")
        if not self.step_s > 0:
            raise ValueError("step_s must be positive")
        object.__setattr__(self, "cpu", cpu)
        object.__setattr__(self, "names", tuple(self.names))
        start = np.zeros(n) if self.start_s is None else np.asarray(self.start_s, dtype=float)
        life = np.full(n, np.inf) if self.lifetime_s is None else np.asarray(self.lifetime_s, float)
        if start.shape != (n,) or life.shape != (n,):
            raise ValueError("start_s and lifetime_s need one value per series")
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "lifetime_s", life)
        for name in SAMPLED_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                value = np.ascontiguousarray(value, dtype=np.float64)
                if value.shape != cpu.shape:
                    raise ValueError(f"{name} must have the shape of cpu {cpu.shape}, "
                                     f"got {value.shape}")
                object.__setattr__(self, name, value)
        for name, dtype in (("vcpus", np.int64), ("ram_bytes", np.float64)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=dtype)
                if value.shape != (n,):
                    raise ValueError(f"{name} needs one value per series ({n}), "
                                     f"got shape {value.shape}")
                object.__setattr__(self, name, value)
        if self.memory is not None and not ((self.memory >= 0) & (self.memory <= 1)).all():
            raise ValueError("memory is a share of the VM's memory, from 0 to 1")

    @property
    def n_series(self) -> int:
        return int(self.cpu.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.cpu.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples * self.step_s

    def select(self, rows: np.ndarray) -> DemandTable:
        """The table restricted (or repeated) to the given series indices, in that order."""
        rows = np.asarray(rows, dtype=np.int64)

        def pick(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else value[rows]

        return DemandTable(
            step_s=self.step_s,
            cpu=self.cpu[rows],
            names=tuple(self.names[i] for i in rows),
            source=self.source,
            start_s=self.start_s[rows],
            lifetime_s=self.lifetime_s[rows],
            **{name: pick(getattr(self, name)) for name in (*SAMPLED_COLUMNS, "vcpus", "ram_bytes")},
        )

    def to_frame(self) -> pd.DataFrame:
        """Long form: one row per series and sample (``series``, ``name``, ``time_s``,
        ``cpu_util_frac``, and ``mem_util_frac``, ``disk_read_bytes_s``, ... where present)."""
        import pandas as pd  # only here: the simulator's hot path never needs pandas

        n, t = self.cpu.shape
        return pd.DataFrame(
            {
                "series": np.repeat(np.arange(n, dtype=np.int32), t),
                "name": pd.Categorical.from_codes(np.repeat(np.arange(n), t), list(self.names))
                if n
                else pd.Categorical([]),
                "time_s": np.tile(np.arange(t) * self.step_s, n),
                "cpu_util_frac": self.cpu.reshape(-1),
                **{
                    _FRAME_NAMES[name]: getattr(self, name).reshape(-1)
                    for name in SAMPLED_COLUMNS
                    if getattr(self, name) is not None
                },
            }
        )


_FRAME_NAMES = {
    "memory": "mem_util_frac",
    "disk_read": "disk_read_bytes_s",
    "disk_write": "disk_write_bytes_s",
    "net_rx": "net_rx_bytes_s",
    "net_tx": "net_tx_bytes_s",
}
