"""The canary's error rate comes from a real gateway's request counter and rolls a failing
challenger back, with the rate in the reason; a healthy challenger is not touched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from prometheus_client import CollectorRegistry

from tradeloop.control.analysis import Samples, challenger_error_rate, observe
from tradeloop.control.rollout import RolloutState, advance
from tradeloop.monitoring.slo import RequestsSince, request_counts
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import Spec

FEATURES = ["ret_1", "ret_5", "vol_20"]
MODEL = "demo"
T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def pairs_only_onnx() -> bytes:
    """A model with a batch-shape bug: it reshapes its scores to [2, -1], so it answers
    batches of an even size (the loader's 2-row probe passes) and fails on odd ones."""
    w = numpy_helper.from_array(np.array([[1.0], [0.5], [-0.25]], dtype=np.float32), "w")
    pair = numpy_helper.from_array(np.array([2, -1], dtype=np.int64), "pair")
    flat = numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["z"]),
            helper.make_node("Reshape", ["z", "pair"], ["z2"]),
            helper.make_node("Reshape", ["z2", "flat"], ["prediction"]),
        ],
        "pairs_only",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])],
        [w, pair, flat],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _canary() -> RolloutState:
    return RolloutState("3", "canary", 0, T0, reason="canary step 1")


def _run_canary(
    models: DirectorySource,
    make_app: Callable[..., Any],
    live: Callable[..., Any],
    deployer: Callable[..., None],
    challenger: bytes,
) -> tuple[RequestsSince, dict[str, tuple[float, float]]]:
    """Serve v1 and `challenger` as v3 50/50 and send 200 requests, every tenth of one row
    (the others of two); the counts the deployer would judge the phase on."""
    models.put(MODEL, "3", challenger, FEATURES)
    deployer(("champion", "1", "live", 50), ("challenger", "3", "live", 50))
    registry = CollectorRegistry(auto_describe=True)
    url = live(make_app(registry=registry)).url
    since = RequestsSince(lambda: request_counts(registry, MODEL))
    mark = ("3", "canary", 0, T0)
    assert since.take(mark) == {}  # the phase's first look sets its baseline
    statuses = set()
    with httpx.Client(base_url=url) as client:
        for i in range(200):
            rows = [[0.01, 0.02, 0.015]] if i % 10 == 0 else [[0.01, 0.02, 0.015]] * 2
            doc = {"dataframe_split": {"columns": FEATURES, "data": rows}}
            statuses.add(client.post("/invocations", json=doc).status_code)
    assert 200 in statuses
    return since, since.take(mark)


def test_a_challenger_that_fails_some_requests_is_rolled_back_with_its_error_rate(
    models: DirectorySource,
    make_app: Callable[..., Any],
    live: Callable[..., Any],
    deployer: Callable[..., None],
) -> None:
    since, counts = _run_canary(models, make_app, live, deployer, pairs_only_onnx())
    assert since.take(("3", "canary", 1, T0)) == {}  # the next step is judged on its own
    errors, total = counts["challenger"]
    assert 0 < errors < total and counts["champion"][0] == 0  # only the challenger's odd ones
    rate = challenger_error_rate(counts)
    assert rate == errors / total and rate > 0.01
    spec = Spec.model_validate({"name": MODEL})  # max_error_rate 1%, failure_limit 1
    empty = np.array([], dtype=np.float64)
    samples = Samples(empty, empty, 0, 0, None, challenger_error_rate=rate)
    state = _canary()
    obs, _ = observe(spec, state, samples, T0, None)
    assert not obs.slo_ok
    assert obs.slo_reason == f"challenger error rate {rate:.1%} > 1%"
    once = advance(state, spec.deployment, obs)
    assert once.phase == "canary" and once.failures == 1  # one breach is within the limit
    twice = advance(once, spec.deployment, obs)
    assert twice.phase == "rolling_back"
    assert twice.reason == f"SLO breached: challenger error rate {rate:.1%} > 1%"


def test_a_healthy_challenger_is_not_rolled_back(
    models: DirectorySource,
    make_app: Callable[..., Any],
    live: Callable[..., Any],
    deployer: Callable[..., None],
    onnx_linear: Callable[..., bytes],
) -> None:
    _, counts = _run_canary(models, make_app, live, deployer, onnx_linear([-1.0, 0.25, 0.5]))
    assert counts["challenger"][0] == 0 and counts["challenger"][1] >= 50
    rate = challenger_error_rate(counts)
    assert rate == 0.0
    spec = Spec.model_validate({"name": MODEL})
    empty = np.array([], dtype=np.float64)
    samples = Samples(empty, empty, 0, 0, None, challenger_error_rate=rate)
    obs, _ = observe(spec, _canary(), samples, T0, None)
    assert obs.slo_ok and obs.slo_reason == ""
    assert advance(_canary(), spec.deployment, obs).phase == "canary"
