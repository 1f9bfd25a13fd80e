"""Metrics live in the gateway's own registry and carry the labels the monitor relies on."""

from __future__ import annotations

from tradeloop.serving.metrics import GatewayMetrics


def test_each_gateway_has_its_own_registry() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()  # a global registry would refuse the second
    a.observe_request("/invocations", "m", "1", "champion", 200, 0.001)
    assert (
        b.registry.get_sample_value(
            "tradeloop_requests_total",
            {
                "route": "/invocations",
                "model": "m",
                "version": "1",
                "variant": "champion",
                "status": "200",
            },
        )
        is None
    )


def test_request_and_prediction_metrics() -> None:
    m = GatewayMetrics()
    for _ in range(3):
        m.observe_request("/invocations", "m", "1", "champion", 200, 0.0015)
    m.observe_request("/invocations", "m", "", "", 400, 0.0001)
    m.observe_predictions("m", "1", "champion", "live", [0.2, 0.7])
    labels = {
        "route": "/invocations",
        "model": "m",
        "version": "1",
        "variant": "champion",
        "status": "200",
    }
    r = m.registry
    assert r.get_sample_value("tradeloop_requests_total", labels) == 3
    assert (
        r.get_sample_value("tradeloop_request_duration_seconds_bucket", {**labels, "le": "0.002"})
        == 3
    )
    assert (
        r.get_sample_value("tradeloop_request_duration_seconds_bucket", {**labels, "le": "0.001"})
        == 0
    )
    assert (
        r.get_sample_value(
            "tradeloop_prediction_value_count",
            {"model": "m", "version": "1", "variant": "champion", "mode": "live"},
        )
        == 2
    )
    text = m.exposition().decode()
    for name in (
        "tradeloop_request_duration_seconds",
        "tradeloop_requests_total",
        "tradeloop_prediction_value",
        "tradeloop_model_loads_total",
        "tradeloop_predlog_queue_depth",
        "tradeloop_predlog_dropped_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
