"""Which variant answers a request: weighted, sticky by key, overridable for tests.

A key hashes (blake2b, stable across processes and restarts, unlike `hash()`) to a bucket in
[0, 100). The champion owns buckets [0, w_champion) and the challenger the rest, so a key meets
the same variant while weights hold, and raising the challenger's weight from 10 to 50 moves
only buckets 50..89 from champion to challenger, never a key the other way.

Requests without a key get a random bucket: a per-request split at the same weights.

Known units (`Router(units=...)`, the spec's symbols) are not hashed: they are ranked by their
digest and unit i of n sits at bucket floor(100(i + 0.5)/n), so a weight of round(100k/n)
gives the challenger exactly k units (`control.canary_units`), however few there are.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from tradeloop.serving.models import Served, Snapshot
from tradeloop.store.deployments import VARIANTS

BUCKETS = 100


class NoModel(Exception):
    """Nothing is deployed (or nothing has loaded yet) for live traffic."""


class UnknownVariant(Exception):
    """An override named a variant that is not being served."""


def bucket(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def unit_buckets(units: Sequence[str]) -> dict[str, int]:
    """Each known unit's bucket: spread evenly over [0, 100) in a deterministic rank order."""
    ranked = sorted(
        set(units), key=lambda u: (hashlib.blake2b(u.encode(), digest_size=8).digest(), u)
    )
    n = len(ranked)
    return {u: (BUCKETS * (2 * i + 1)) // (2 * n) for i, u in enumerate(ranked)}


def bucket_table(snapshot: Snapshot) -> list[Served]:
    """Served variant per bucket. A live variant that has not loaded yet cedes its buckets to
    one that has, so traffic never fails because a challenger is still loading."""
    live = sorted(
        (d for d in snapshot.deployed if d.mode == "live"), key=lambda d: VARIANTS.index(d.variant)
    )
    fallback = snapshot.primary
    if fallback is None or not live:
        return []
    table: list[Served] = []
    for d in live:
        served = snapshot.served.get(d.variant)
        table.extend([served if served is not None else fallback] * d.weight)
    return (table + [fallback] * BUCKETS)[:BUCKETS]


class Router:
    def __init__(self, rng: random.Random | None = None, units: Sequence[str] = ()) -> None:
        self._rng = rng or random.Random()
        self._units = unit_buckets(units) if units else {}
        self._cache: tuple[Snapshot | None, list[Served]] = (None, [])

    def table(self, snapshot: Snapshot) -> list[Served]:
        cached_for, table = self._cache
        if cached_for is not snapshot:
            table = bucket_table(snapshot)
            self._cache = (snapshot, table)
        return table

    def route(self, snapshot: Snapshot, key: str | None, override: str | None = None) -> Served:
        if override is not None:
            served = snapshot.served.get(override)
            if served is None:
                have = ", ".join(sorted(snapshot.served)) or "none"
                raise UnknownVariant(f"variant {override!r} is not being served (serving: {have})")
            return served
        table = self.table(snapshot)
        if not table:
            raise NoModel(f"no model is serving for {snapshot.model_name!r} yet")
        if key:
            b = self._units.get(key)
            if b is None:
                b = bucket(key)
        else:
            b = self._rng.randrange(BUCKETS)
        return table[b]
