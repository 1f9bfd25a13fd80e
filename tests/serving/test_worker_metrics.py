"""`MultiprocessBulkHistogram` records what `BulkHistogram` records (same exposition)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tradeloop.serving.bulk_histogram import BulkHistogram
from tradeloop.serving.metrics import VALUE_BUCKETS
from tradeloop.serving.worker_metrics import MultiprocessBulkHistogram


@pytest.mark.parametrize("n", [1, 5, 1000])
def test_multiprocess_bulk_histogram_matches_bulk_histogram(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.uniform(-0.1, 1.1, n)
    values[: n // 3] = 0.5  # a value equal to a bound belongs to that bound's bucket
    if n > 1:
        values[1] = np.nan  # skipped by both
    plain, multi = CollectorRegistry(), CollectorRegistry()
    a = BulkHistogram("h", "doc", ("model",), VALUE_BUCKETS, registry=plain)
    b = MultiprocessBulkHistogram("h", "doc", ("model",), VALUE_BUCKETS, registry=multi)
    for hist in (a, b):
        hist.observe(("m",), values)
        hist.observe(("m",), values[:3])

    def samples(reg: CollectorRegistry) -> dict[str, float]:
        lines = generate_latest(reg).decode().splitlines()
        out = {}
        for line in lines:
            if line.startswith("h_") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    got, want = samples(multi), samples(plain)
    assert want and set(got) >= set(want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value), name
