"""Experiments of many runs: sweeps of scenario fields with replications, on local processes or a
Dask cluster, resumable, with their results aggregated into confidence intervals."""
