"""The gateway as a whole over real HTTP: operations endpoints, tokens, limits, hostile input,
hot swaps under load, shadow scoring, and a graceful stop that loses no prediction."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradeloop.security.tokens import create_token
from tradeloop.spec import ServingSpec
from tradeloop.store import Store

FEATURES = ["ret_1", "ret_5", "vol_20"]
ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.01, 0.02, 0.015]]}}


def predictions(state: Path, where: str = "true") -> list[tuple[Any, ...]]:
    glob = state / "predictions" / "**" / "*.parquet"
    if not list((state / "predictions").rglob("*.parquet")):
        return []
    sql = f"select request_id, variant, mode, version from read_parquet('{glob}', hive_partitioning=true) where {where}"
    return duckdb.sql(sql).fetchall()


@pytest.fixture(scope="module")
def client(stack: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url) as c:
        yield c


# ------------------------------------------------------------------------------ operations


def test_health_ready_metrics_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert {v["variant"]: v["serving_version"] for v in ready.json()["variants"]} == {
        "champion": "1",
        "challenger": "2",
    }
    client.post("/invocations", json=ROW).raise_for_status()
    text = client.get("/metrics").text
    assert (
        'tradeloop_requests_total{model="demo",route="/invocations",status="200",variant="champion",version="1"}'
        in text
    )
    assert "tradeloop_model_loads_total" in text and "tradeloop_predlog_queue_depth" in text
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/invocations", "/v2/models/{name}/infer", "/healthz", "/readyz", "/metrics"} <= set(
        doc["paths"]
    )
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return resolve(schemas[ref.rsplit("/", 1)[1]]) if ref else schema

    forms = [resolve(f) for f in schemas["Invocation"]["anyOf"]]
    (records,) = [f["properties"] for f in forms if "dataframe_records" in f["properties"]]
    record = resolve(records["dataframe_records"]["items"])
    assert list(record["properties"]) == record["required"] == FEATURES  # the served model's


def test_unknown_routes_and_methods_are_json(client: httpx.Client) -> None:
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = client.delete("/invocations")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_request_id_is_echoed(client: httpx.Client) -> None:
    r = client.post("/invocations", json=ROW, headers={"x-request-id": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    assert client.post("/invocations", json=ROW).headers["x-request-id"] != "trace-123"


# ------------------------------------------------------------------------------ shadow


def test_shadow_scores_a_copy_and_the_client_gets_the_champion(
    client: httpx.Client, stack: Any
) -> None:
    ids = [f"shadow-{i}" for i in range(20)]
    for rid in ids:
        r = client.post("/invocations", json=ROW, headers={"x-request-id": rid})
        assert r.headers["x-tradeloop-variant"] == "champion"
    gw = stack.app.state.gateway
    assert gw.shadow.join(10) and gw.predlog.flush(10)
    rows = predictions(stack.state, "request_id like 'shadow-%'")
    assert sorted((r[1], r[2], r[3]) for r in rows) == sorted(
        [("champion", "live", "1")] * 20 + [("challenger", "shadow", "2")] * 20
    )
    assert {r[0] for r in rows} == set(ids)


def test_override_header_needs_an_operator_even_when_tokens_are_off(
    client: httpx.Client, stack: Any
) -> None:
    anonymous = client.post("/invocations", json=ROW, headers={"x-tradeloop-variant": "champion"})
    assert anonymous.status_code == 401 and "operator" in anonymous.json()["message"]
    plain = create_token(stack.store, "dev", "operator", user="dev@example.com")[0]
    op = {"authorization": f"Bearer {plain}"}
    r = client.post("/invocations", json=ROW, headers={**op, "x-tradeloop-variant": "challenger"})
    assert (
        r.headers["x-tradeloop-variant"] == "challenger"
        and r.headers["x-tradeloop-model-version"] == "2"
    )
    r = client.post("/invocations", json=ROW, headers={**op, "x-tradeloop-variant": "blue"})
    assert r.status_code == 400 and "not being served" in r.json()["message"]


# ------------------------------------------------------------------------------ limits, hostile input


def test_body_limit_by_header_and_by_stream(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec(max_body_bytes=2048))).url
    big = {"dataframe_split": {"columns": FEATURES, "data": [[0.5, 0.5, 0.5]] * 300}}
    r = httpx.post(url + "/invocations", json=big)
    assert r.status_code == 413 and "over the limit of 2048" in r.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        yield b'{"dataframe_split": {"columns": ["ret_1", "ret_5", "vol_20"], "data": ['
        for _ in range(300):
            yield b"[0.5, 0.5, 0.5],"
        yield b"[0.5, 0.5, 0.5]]}}"

    r = httpx.post(
        url + "/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "over the limit" in r.json()["message"]
    assert httpx.post(url + "/invocations", json=ROW).status_code == 200


HOSTILE: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/invocations", b"\xff\xfe\x00garbage", {"content-type": "application/json"}),
    ("POST", "/invocations", b"[" * 5000 + b"]" * 5000, {"content-type": "application/json"}),
    (
        "POST",
        "/invocations",
        b'{"inputs": ' + b"[" * 200 + b"1" + b"]" * 200 + b"}",
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/invocations",
        b'{"dataframe_split": {"columns": [1, 2, 3], "data": [[1, 2, 3]]}}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/invocations",
        b'{"dataframe_split": {"columns": ' + b'"x"' + b', "data": 5}}',
        {"content-type": "application/json"},
    ),
    ("POST", "/invocations", b'{"dataframe_split": []}', {"content-type": "application/json"}),
    (
        "POST",
        "/invocations",
        b'{"dataframe_records": [1, 2]}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/invocations",
        b'{"dataframe_records": [{"ret_1": 1, "ret_5": 2, "vol_20": 3}, {"ret_1": 1}]}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/invocations",
        b'{"inputs": {"ret_1": [1, 2], "ret_5": [1], "vol_20": [1]}}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/invocations",
        b'{"inputs": {"ret_1": 1, "ret_5": 1, "vol_20": 1}}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/invocations",
        b'{"instances": [[1e400, 1, 1]]}',
        {"content-type": "application/json"},
    ),
    ("POST", "/invocations", b'{"instances": [[NaN, 1, 1]]}', {"content-type": "application/json"}),
    (
        "POST",
        "/invocations",
        b'{"instances": [[10000000000000000000000000000000000000000, 1, 1]]}',
        {"content-type": "application/json"},
    ),
    ("POST", "/invocations", b"ret_1,ret_5\n1,2,3\n", {"content-type": "text/csv"}),
    ("POST", "/invocations", b"\xff\xfe", {"content-type": "text/csv"}),
    ("POST", "/invocations", b"{}", {"content-type": "multipart/form-data; boundary=x"}),
    (
        "POST",
        "/v2/models/demo/infer",
        b'{"inputs": [{"name": "input", "shape": [-1, 3], "datatype": "FP32", "data": []}]}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/v2/models/demo/infer",
        b'{"inputs": [{"name": "input", "shape": [0, 3], "datatype": "FP32", "data": []}]}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/v2/models/demo/infer",
        b'{"inputs": [{"name": "input", "shape": [1000000000, 1000000000], "datatype": "FP32", "data": [1]}]}',
        {"content-type": "application/json"},
    ),
    (
        "POST",
        "/v2/models/demo/infer",
        b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3], "parameters": 5}]}',
        {"content-type": "application/json"},
    ),
    ("POST", "/v2/models/demo/infer", b'{"inputs": "x"}', {"content-type": "application/json"}),
    ("POST", "/v2/models/demo/infer", b'{"inputs": [1]}', {"content-type": "application/json"}),
    (
        "POST",
        "/v2/models/demo/infer",
        b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}], "outputs": 5}',
        {"content-type": "application/json"},
    ),
    ("POST", "/v2/models/%2e%2e/infer", b"{}", {"content-type": "application/json"}),
    ("PUT", "/v2/models/demo/infer", b"{}", {}),
    ("POST", "/admin/reload", b"", {"authorization": "Bearer nope"}),
    ("POST", "/admin/reload", b"", {"authorization": "Basic Zm9vOmJhcg=="}),
    ("POST", "/admin/reload", b"", {}),
]


def test_hostile_requests_get_4xx_json(client: httpx.Client) -> None:
    for method, path, body, headers in HOSTILE:
        r = client.request(method, path, content=body, headers=headers)
        assert 400 <= r.status_code < 500, (path, body[:80], r.status_code, r.text[:200])
        doc = r.json()
        assert doc.get("message") or doc.get("error"), (path, body[:80], doc)


def raw_http(url: str, request: bytes) -> int:
    """Send bytes no client library would, and return the status the server answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        head = sock.recv(4096)
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: abc\r\n\r\n{}",
        b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 999999999999\r\n\r\n{}",
        b"GARBAGE\r\n\r\n",
    ],
)
def test_malformed_http_gets_4xx(stack: Any, request_bytes: bytes) -> None:
    assert 400 <= raw_http(stack.url, request_bytes) < 500


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "dataframe_split",
                    "dataframe_records",
                    "instances",
                    "inputs",
                    "columns",
                    "data",
                    "name",
                    "shape",
                    "datatype",
                    "bars",
                    "symbol",
                    *FEATURES,
                ]
            )
            | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    doc=JSON,
    path=st.sampled_from(
        ["/invocations", "/v2/models/demo/infer", "/v2/models/demo/versions/1/infer"]
    ),
)
def test_random_json_never_5xx(client: httpx.Client, doc: Any, path: str) -> None:
    r = client.post(path, json=doc)
    assert r.status_code < 500, (path, doc, r.text)


# ------------------------------------------------------------------------------ tokens


@pytest.fixture
def secured(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], store: Store
) -> tuple[str, dict[str, str]]:
    deployer(("champion", "1", "live", 90), ("challenger", "2", "live", 10))
    url = live(make_app(serving=ServingSpec(require_token=True))).url
    tokens = {
        role: create_token(store, f"t-{role}", role)[0]
        for role in ("viewer", "predictor", "operator")
    }
    return url, tokens


def test_prediction_needs_a_predictor_token(secured: tuple[str, dict[str, str]]) -> None:
    url, tokens = secured
    r = httpx.post(url + "/invocations", json=ROW)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert (
        httpx.post(
            url + "/invocations", json=ROW, headers={"authorization": "Bearer tl_wrong"}
        ).status_code
        == 401
    )
    r = httpx.post(
        url + "/invocations", json=ROW, headers={"authorization": f"Bearer {tokens['viewer']}"}
    )
    assert r.status_code == 403 and "viewer" in r.json()["message"]
    assert (
        httpx.post(
            url + "/invocations",
            json=ROW,
            headers={"authorization": f"Bearer {tokens['predictor']}"},
        ).status_code
        == 200
    )
    assert httpx.get(url + "/healthz").status_code == 200  # operations endpoints stay open
    assert httpx.get(url + "/metrics").status_code == 200


def test_variant_override_needs_an_operator_token(secured: tuple[str, dict[str, str]]) -> None:
    url, tokens = secured
    force = {"x-tradeloop-variant": "challenger"}
    r = httpx.post(
        url + "/invocations",
        json=ROW,
        headers={**force, "authorization": f"Bearer {tokens['predictor']}"},
    )
    assert r.status_code == 403 and "operator" in r.json()["message"]
    r = httpx.post(
        url + "/invocations",
        json=ROW,
        headers={**force, "authorization": f"Bearer {tokens['operator']}"},
    )
    assert r.status_code == 200 and r.headers["x-tradeloop-variant"] == "challenger"


def test_admin_reload_always_needs_an_operator(
    secured: tuple[str, dict[str, str]], client: httpx.Client
) -> None:
    url, tokens = secured
    assert (
        httpx.post(
            url + "/admin/reload", headers={"authorization": f"Bearer {tokens['predictor']}"}
        ).status_code
        == 403
    )
    r = httpx.post(url + "/admin/reload", headers={"authorization": f"Bearer {tokens['operator']}"})
    assert r.status_code == 200 and r.json()["ready"] is True
    assert (
        client.post("/admin/reload").status_code == 401
    )  # tokens off for predictions, still needed here


# ------------------------------------------------------------------------------ hot swap


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s")
        time.sleep(0.01)


def hammer(
    url: str, stop: threading.Event, out: list[list[tuple[int, str]]], threads: int = 6
) -> list[threading.Thread]:
    def run(slot: list[tuple[int, str]]) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/invocations", json=ROW)
                    slot.append((r.status_code, r.headers.get("x-tradeloop-model-version", "")))
                except httpx.HTTPError as exc:  # a dropped connection counts as a failure
                    slot.append((0, type(exc).__name__))

    workers = []
    for _ in range(threads):
        out.append([])
        t = threading.Thread(target=run, args=(out[-1],), daemon=True)
        t.start()
        workers.append(t)
    return workers


def test_hot_swap_under_load_fails_no_request(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    app = make_app()
    url = live(app).url
    stop, results = threading.Event(), []  # type: ignore[var-annotated]
    workers = hammer(url, stop, results)
    try:
        # every client has been answered by v1 a few times before the swap ...
        wait_for(lambda: all(sum(v == "1" for _, v in slot) >= 5 for slot in results))
        deployer(("champion", "2", "live", 100))
        # ... and by v2 a few times after it
        wait_for(lambda: all(sum(v == "2" for _, v in slot) >= 5 for slot in results))
    finally:
        stop.set()
        for w in workers:
            w.join(10)
    flat = [r for slot in results for r in slot]
    assert {status for status, _ in flat} == {200}, [r for r in flat if r[0] != 200][:5]
    for slot in results:  # each client sees 1 until the swap, then 2, never back
        versions = [v for _, v in slot]
        assert versions == sorted(versions) and versions[-1] == "2"
        assert versions[0] == "1"


def test_tampered_model_is_refused_while_the_old_one_serves(
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    models: Any,
    onnx_linear: Callable[..., bytes],
) -> None:
    deployer(("champion", "1", "live", 100))
    app = make_app()
    url = live(app).url
    folder = models.put("demo", "3", onnx_linear([3.0, 3.0, 3.0]), FEATURES)
    (folder / "sha256").write_text("0" * 64)  # the registry's digest no longer matches the bytes
    deployer(("champion", "3", "live", 100))
    gw = app.state.gateway
    wait_for(lambda: "champion" in gw.snapshot.errors)
    r = httpx.post(url + "/invocations", json=ROW)
    assert r.status_code == 200 and r.headers["x-tradeloop-model-version"] == "1"
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200  # degraded: the old version answers, so traffic may come
    assert ready.json()["state"] == "degraded" and ready.json()["ready"] is False
    (variant,) = ready.json()["variants"]
    assert (variant["deployed_version"], variant["serving_version"], variant["loaded"]) == (
        "3",
        "1",
        False,
    )
    assert "sha256" in variant["error"]
    assert httpx.get(url + "/v2/health/ready").status_code == 503
    metric = 'tradeloop_model_loads_total{result="integrity_error"}'
    assert any(
        line.startswith(metric) and float(line.split()[-1]) >= 1
        for line in httpx.get(url + "/metrics").text.splitlines()
    )


def test_not_ready_before_any_deployment(make_app: Callable[..., Any], live: Any) -> None:
    url = live(make_app()).url
    assert httpx.get(url + "/healthz").status_code == 200
    assert httpx.get(url + "/readyz").status_code == 503
    r = httpx.post(url + "/invocations", json=ROW)
    assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert httpx.get(url + "/ping").status_code == 503


# ------------------------------------------------------------------------------ graceful stop


def test_graceful_stop_writes_every_prediction(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], tmp_path: Path
) -> None:
    deployer(("champion", "1", "live", 50), ("challenger", "2", "live", 50))
    server = live(make_app(predlog_flush_interval=60))  # nothing is written until the stop
    variants: dict[str, str] = {}
    with httpx.Client(base_url=server.url) as c:
        for i in range(300):
            r = c.post(
                "/invocations",
                json=ROW,
                headers={"x-request-id": f"r{i}", "x-tradeloop-key": f"k{i % 30}"},
            )
            r.raise_for_status()
            # sticky: a key meets the variant it met before
            assert (
                variants.setdefault(f"k{i % 30}", r.headers["x-tradeloop-variant"])
                == r.headers["x-tradeloop-variant"]
            )
    assert set(variants.values()) == {"champion", "challenger"}
    assert predictions(tmp_path / "state") == []
    server.stop()
    rows = predictions(tmp_path / "state")
    assert sorted(r[0] for r in rows) == sorted(f"r{i}" for i in range(300))
    assert {r[1] for r in rows} == {"champion", "challenger"}


def test_serve_freezes_the_heap_after_startup(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    """`serve()` sets freeze_gc: full collections then skip everything loaded at startup."""
    import gc

    deployer(("champion", "1", "live", 100))
    app = make_app()
    app.state.freeze_gc = True
    try:
        live(app)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
