"""The model manager follows deployment state, swaps atomically, and survives bad artifacts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.models import ModelManager
from tradeloop.serving.source import DirectorySource
from tradeloop.store import Store

X = np.array([[1.0, 1.0, 1.0]], dtype=np.float32)
Deploy = Callable[..., None]


def loads(metrics: GatewayMetrics, result: str) -> float:
    return (
        metrics.registry.get_sample_value("tradeloop_model_loads_total", {"result": result}) or 0.0
    )


def test_loads_deployed_versions_and_reports_readiness(
    store: Store, models: DirectorySource, deployer: Deploy
) -> None:
    metrics = GatewayMetrics()
    manager = ModelManager(store, "demo", models, metrics)
    assert not manager.refresh().ready  # nothing deployed yet: live but not ready
    deployer(("champion", "1", "live", 90), ("challenger", "2", "live", 10))
    snap = manager.refresh()
    assert snap.ready and sorted(snap.served) == ["challenger", "champion"]
    assert {s.variant: s.version for s in snap.served.values()} == {
        "champion": "1",
        "challenger": "2",
    }
    assert loads(metrics, "success") == 2
    assert manager.refresh() is snap  # unchanged state: the very same snapshot
    assert metrics.registry.get_sample_value("tradeloop_ready") == 1


def test_swap_reuses_loaded_versions(
    store: Store, models: DirectorySource, deployer: Deploy
) -> None:
    metrics = GatewayMetrics()
    manager = ModelManager(store, "demo", models, metrics)
    deployer(("champion", "1", "live", 90), ("challenger", "2", "live", 10))
    before = manager.refresh()
    deployer(("champion", "2", "live", 100))  # promotion: version 2 is already loaded
    after = manager.refresh()
    assert after.served["champion"].model is before.served["challenger"].model
    assert loads(metrics, "success") == 2
    # the old snapshot still answers: a request holding it finishes on the old models
    assert (
        before.served["champion"].model.predict(X)[0]
        != after.served["champion"].model.predict(X)[0]
    )


def test_tampered_version_is_refused_and_the_old_one_keeps_serving(
    store: Store,
    models: DirectorySource,
    deployer: Deploy,
    onnx_linear: Callable[..., bytes],
    tmp_path: Path,
) -> None:
    metrics = GatewayMetrics()
    manager = ModelManager(store, "demo", models, metrics)
    deployer(("champion", "1", "live", 100))
    manager.refresh()
    folder = models.put("demo", "3", onnx_linear([9.0, 9.0, 9.0]), ["ret_1", "ret_5", "vol_20"])
    good = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(onnx_linear([9.0, 9.0, 8.0]))  # swapped after signing
    deployer(("champion", "3", "live", 100))
    snap = manager.refresh()
    assert snap.served["champion"].version == "1" and not snap.ready
    assert "sha256" in snap.errors["champion"]
    assert loads(metrics, "integrity_error") == 1
    manager.refresh()  # retried on every poll, still refused
    assert loads(metrics, "integrity_error") == 2
    (folder / "model.onnx").write_bytes(good)  # the operator restores the right file
    snap = manager.refresh()
    assert snap.ready and snap.served["champion"].version == "3"


def test_a_missing_new_variant_is_not_served_until_it_loads(
    store: Store, models: DirectorySource, deployer: Deploy
) -> None:
    metrics = GatewayMetrics()
    manager = ModelManager(store, "demo", models, metrics)
    deployer(("champion", "1", "live", 90), ("challenger", "7", "live", 10))
    snap = manager.refresh()
    assert list(snap.served) == ["champion"] and not snap.ready
    assert "missing" in snap.errors["challenger"]
    assert loads(metrics, "error") == 1


def test_polling_thread_follows_changes(
    store: Store, models: DirectorySource, deployer: Deploy
) -> None:
    manager = ModelManager(store, "demo", models, GatewayMetrics(), poll_interval=0.02)
    deployer(("champion", "1", "live", 100))
    manager.start()
    try:
        assert manager.snapshot.served["champion"].version == "1"  # start() loads synchronously
        deployer(("champion", "2", "live", 100))
        deadline = time.monotonic() + 5
        while manager.snapshot.served["champion"].version != "2" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert manager.snapshot.served["champion"].version == "2"
    finally:
        manager.stop()
