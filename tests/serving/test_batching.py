"""Micro-batching (`serving.batching`): concurrent requests share onnxruntime runs, and each
still gets exactly its own answer, error, prediction-log rows and request metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np

from tradeloop.serving.batching import MicroBatcher
from tradeloop.serving.runtime import LoadedModel
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import BatchingSpec, ServingSpec

FEATURES = ["ret_1", "ret_5", "vol_20"]


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(n, 3)).astype(np.float32)


async def _fire(
    url: str, rows: np.ndarray, bad: frozenset[int] = frozenset()
) -> list[httpx.Response]:
    """One request per row, all at once on their own connections; mlflow and v2 alternate,
    and the rows in `bad` lack a feature."""
    limits = httpx.Limits(max_connections=len(rows), max_keepalive_connections=len(rows))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        def one(i: int, row: list[float]) -> Any:
            cols = FEATURES[1:] if i in bad else FEATURES
            vals = row[1:] if i in bad else row
            if i % 2:
                split = {"dataframe_split": {"columns": cols, "data": [vals]}}
                return client.post("/invocations", json=split)
            tensor = {"name": "input", "shape": [1, len(vals)], "datatype": "FP32", "data": vals}
            return client.post("/v2/models/demo/infer", json={"inputs": [tensor]})

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(rows.tolist()))))


def _value(r: httpx.Response) -> float:
    doc = r.json()
    if "predictions" in doc:
        return float(doc["predictions"][0]["prediction"])
    return float(doc["outputs"][0]["data"][0])


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_batched_answers_equal_unbatched_and_batches_form(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], tmp_path: Path
) -> None:
    deployer(("champion", "1", "live", 100))
    rows = _rows(48)
    plain = live(make_app(state_dir=tmp_path / "plain")).url
    expected = [_value(r) for r in asyncio.run(_fire(plain, rows))]
    # deadline mode with a generous delay: every concurrent request lands in some batch
    spec = BatchingSpec(max_batch=16, max_delay=timedelta(milliseconds=200), flush="deadline")
    app = make_app(state_dir=tmp_path / "batched", serving=ServingSpec(batching=spec))
    url = live(app).url
    got = asyncio.run(_fire(url, rows))
    assert [r.status_code for r in got] == [200] * 48
    assert [_value(r) for r in got] == expected  # bit for bit: same rows, same float32 graph
    runs = _metric(url, "tradeloop_batch_size_count")
    assert _metric(url, "tradeloop_batch_size_sum") == 48  # every request went through a batch
    assert runs < 48 / 2  # so most runs held several requests
    assert _metric(url, 'tradeloop_batch_size_bucket{le="1.0"}') < runs
    # the request metrics still count requests, not runs
    requests = sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{url}/metrics").text.splitlines()
        if line.startswith("tradeloop_requests_total{")
        and ("infer" in line or "invocations" in line)
    )
    assert requests == 48
    # the prediction log has each request's own row and prediction
    app.state.gateway.predlog.flush(timeout=10)
    glob = tmp_path / "batched" / "predictions" / "**" / "*.parquet"
    logged = duckdb.sql(
        f"select request_id, prediction from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()
    by_id = {r.headers["x-request-id"]: _value(r) for r in got}
    assert len(logged) == 48
    assert {rid: _f32(p) for rid, p in logged} == by_id


def _f32(v: float) -> float:
    """The log stores float32 predictions; the JSON answer is the same float32, widened."""
    return float(np.float32(v))


def test_idle_flush_answers_right_and_errors_stay_per_request(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], tmp_path: Path
) -> None:
    deployer(("champion", "1", "live", 100))
    rows = _rows(40)
    plain = live(make_app(state_dir=tmp_path / "plain")).url
    expected = [_value(r) for r in asyncio.run(_fire(plain, rows))]
    spec = BatchingSpec(max_batch=64)  # idle flush, 1 ms budget: the defaults
    url = live(make_app(state_dir=tmp_path / "b", serving=ServingSpec(batching=spec))).url
    bad = frozenset({3, 10, 17})
    got = asyncio.run(_fire(url, rows, bad))
    for i, r in enumerate(got):
        if i in bad:
            assert r.status_code == 400, r.text
            assert r.json().get("error") or r.json().get("message")  # its protocol's JSON
        else:
            assert r.status_code == 200, r.text
            assert _value(r) == expected[i]
    assert _metric(url, "tradeloop_batch_size_sum") == 40 - len(bad)


def test_a_batch_never_mixes_versions(models: DirectorySource) -> None:
    """Requests for v1 and v2 in the same moment: two batches, each run by its own version."""
    v1, v2 = (LoadedModel(models.fetch("demo", v)) for v in ("1", "2"))
    sizes: list[float] = []
    spec = BatchingSpec(max_batch=64, max_delay=timedelta(milliseconds=50), flush="deadline")
    batcher = MicroBatcher(spec, sizes.append)
    rows = _rows(20)

    async def main() -> list[np.ndarray]:
        calls = [batcher.predict(v1 if i % 2 else v2, rows[i : i + 1], False) for i in range(20)]
        return list(await asyncio.gather(*calls))

    got = asyncio.run(main())
    assert sorted(sizes) == [10, 10]
    for i, y in enumerate(got):
        model = v1 if i % 2 else v2
        assert y.tolist() == model.predict(rows[i : i + 1]).tolist()
    assert v1.predict(rows[:1]).tolist() != v2.predict(rows[:1]).tolist()  # they differ
