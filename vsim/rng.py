"""Seeded randomness: one seed per run, spawned into independent named generators.

There is no global random state in vsim. A run's seed goes into a :class:`numpy.random.SeedSequence`;
every consumer asks for a generator by a stable name ("workload/web", "placement"), so adding a
new consumer never changes the numbers another one draws.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["RandomStreams"]


class RandomStreams:
    """Named, independent :class:`numpy.random.Generator` streams derived from one seed."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError("seed must be a non-negative integer")
        self.seed = int(seed)

    def generator(self, name: str) -> np.random.Generator:
        """A fresh generator for ``name``; the same seed and name always give the same stream."""
        key = zlib.crc32(name.encode("utf-8"))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(key,)))
