"""Last known good across restarts: a tampered deployed artifact plus a restart still answers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tradeloop.serving.last_good import LastGood
from tradeloop.serving.source import DirectorySource, ModelArtifact
from tradeloop.store import Store
from tradeloop.store.gateway_reports import latest_serving

FEATURES = ["ret_1", "ret_5", "vol_20"]
ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.01, 0.02, 0.015]]}}


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not exported")


def test_remember_and_recall_verify_the_bytes(tmp_path: Path) -> None:
    cache = LastGood(tmp_path)
    data = b"onnx-bytes-v1"
    sha = hashlib.sha256(data).hexdigest()
    cache.remember("champion", ModelArtifact("demo", "1", data, FEATURES, sha))
    got = cache.recall("demo", "champion")
    assert got is not None and (got.version, got.onnx_bytes, got.feature_names) == (
        "1",
        data,
        FEATURES,
    )
    assert cache.recall("demo", "challenger") is None
    # a newer version replaces the pointer and the old blob is collected
    new = b"onnx-bytes-v2"
    cache.remember(
        "champion", ModelArtifact("demo", "2", new, FEATURES, hashlib.sha256(new).hexdigest())
    )
    assert [p.name for p in (tmp_path / "blobs").iterdir()] == [
        hashlib.sha256(new).hexdigest() + ".onnx"
    ]
    # the cache is not trusted either: changed bytes are refused
    (tmp_path / "blobs" / (hashlib.sha256(new).hexdigest() + ".onnx")).write_bytes(b"evil")
    assert LastGood(tmp_path).recall("demo", "champion") is None


def test_tampered_deployed_artifact_and_a_restart_serve_the_last_good_version(
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    models: DirectorySource,
    store: Store,
) -> None:
    deployer(("champion", "1", "live", 100))
    first = live(make_app(gateway_id="gw-a"))
    r = httpx.post(first.url + "/invocations", json=ROW)
    assert r.status_code == 200 and r.headers["x-tradeloop-model-version"] == "1"
    good = r.json()
    first.stop()

    # the deployed artifact is swapped after signing, then the gateway restarts
    onnx = models.root / "demo" / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\x00")
    url = live(make_app(gateway_id="gw-a")).url
    r = httpx.post(url + "/invocations", json=ROW)
    assert r.status_code == 200 and r.json() == good
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert (body["ready"], body["degraded"], body["state"]) == (False, True, "degraded")
    (variant,) = body["variants"]
    assert variant["last_good"] is True and "sha256" in variant["error"]
    assert metric(url, "tradeloop_gateway_degraded") == 1.0
    assert metric(url, "tradeloop_ready") == 0.0
    # what answers is in the store for `tradeloop status`
    (report,) = latest_serving(store, "demo")
    assert report["gateway"] == "gw-a" and report["degraded"] is True
    assert report["variants"][0]["serving_version"] == "1"
    assert report["variants"][0]["last_good"] is True


def test_a_failed_new_version_after_restart_falls_back_to_the_variants_last_good(
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    models: DirectorySource,
    onnx_linear: Callable[..., bytes],
) -> None:
    deployer(("champion", "1", "live", 100))
    first = live(make_app())
    assert httpx.post(first.url + "/invocations", json=ROW).status_code == 200
    first.stop()
    folder = models.put("demo", "3", onnx_linear([3.0, 3.0, 3.0]), FEATURES)
    (folder / "sha256").write_text("0" * 64)
    deployer(("champion", "3", "live", 100))
    app = make_app()
    url = live(app).url
    r = httpx.post(url + "/invocations", json=ROW)
    assert r.status_code == 200 and r.headers["x-tradeloop-model-version"] == "1"
    assert httpx.get(url + "/readyz").json()["variants"][0]["deployed_version"] == "3"
    # a good version deployed next clears the degraded state
    deployer(("champion", "2", "live", 100))
    app.state.gateway.manager.refresh()
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200 and ready.json()["state"] == "ready"
    assert metric(url, "tradeloop_gateway_degraded") == 0.0


def test_without_a_good_copy_the_gateway_is_not_ready(
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    models: DirectorySource,
    tmp_path: Path,
) -> None:
    deployer(("champion", "1", "live", 100))
    first = live(make_app())
    assert httpx.post(first.url + "/invocations", json=ROW).status_code == 200
    first.stop()
    for blob in (tmp_path / "state" / "last_good" / "blobs").iterdir():
        blob.write_bytes(b"tampered too")
    onnx = models.root / "demo" / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\x00")
    url = live(make_app()).url
    assert httpx.post(url + "/invocations", json=ROW).status_code == 503
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 503 and ready.json()["state"] == "not ready"
