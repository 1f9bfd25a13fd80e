"""The bulk histogram exposes exactly what prometheus_client's Histogram would for the same values."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from tradeloop.serving.bulk_histogram import BulkHistogram

BUCKETS = (-0.5, 0.0, 0.25, 0.5, 1.0, 2.5)


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    """`name{labels}` -> value, from the text exposition (what Prometheus scrapes)."""
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if not line.startswith("#") and "_created" not in line:
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


@pytest.mark.parametrize("buckets", [BUCKETS, (0.001, 0.01, 0.1, 0.5, 1.0)])  # _sum only >= 0
@pytest.mark.parametrize("sizes", [[1, 1, 3], [1000], [7, 8, 9, 500], [0, 2]])
def test_same_exposition_as_prometheus_client(sizes: list[int], buckets: tuple[float]) -> None:
    rng = np.random.default_rng(len(sizes))
    ours_reg, theirs_reg = CollectorRegistry(), CollectorRegistry()
    ours = BulkHistogram("v", "values", ("variant",), buckets, registry=ours_reg)
    theirs = Histogram("v", "values", ("variant",), buckets=buckets, registry=theirs_reg)
    for i, n in enumerate(sizes):
        # values on the bounds themselves too: `le` means <=, so 0.5 counts in le="0.5"
        values = np.concatenate([rng.normal(0.3, 1.0, n), np.asarray(buckets[: n % 3])])
        variant = "champion" if i % 2 == 0 else "challenger"
        ours.observe((variant,), values.astype(np.float32))
        child = theirs.labels(variant)
        for v in values.astype(np.float32):
            child.observe(float(v))
    ours_s, theirs_s = _samples(ours_reg), _samples(theirs_reg)
    assert ours_s.keys() == theirs_s.keys()
    for name, value in theirs_s.items():  # counts exact; sums to rounding
        assert ours_s[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_nan_is_skipped_and_labels_are_checked() -> None:
    reg = CollectorRegistry()
    h = BulkHistogram("v", "values", ("variant",), BUCKETS, registry=reg)
    h.observe(("a",), np.array([np.nan, 0.1]))
    h.observe(("a",), np.full(20, np.nan))
    assert reg.get_sample_value("v_count", {"variant": "a"}) == 1
    assert reg.get_sample_value("v_bucket", {"variant": "a", "le": "0.25"}) == 1
    assert reg.get_sample_value("v_bucket", {"variant": "a", "le": "0.0"}) == 0
    with pytest.raises(ValueError, match="expected labels"):
        h.observe(("a", "b"), [1.0])
    with pytest.raises(ValueError, match="increase strictly"):
        BulkHistogram("w", "w", (), (1.0, 0.5))
