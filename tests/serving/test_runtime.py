"""The ONNX runtime: verified bytes only, the model contract enforced, predictions exact."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

from tradeloop.errors import BadInput, HashMismatch
from tradeloop.serving.runtime import LoadedModel, session_options
from tradeloop.serving.source import ModelArtifact


def artifact(blob: bytes, names: list[str], sha: str | None = None) -> ModelArtifact:
    return ModelArtifact("m", "1", blob, names, sha or hashlib.sha256(blob).hexdigest())


def test_predicts_the_linear_model(onnx_linear: Callable[..., bytes]) -> None:
    model = LoadedModel(
        artifact(onnx_linear([1.0, -2.0, 0.5], 0.25, classifier=False), ["a", "b", "c"])
    )
    x = np.array([[1, 2, 3], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(model.predict(x), [1 - 4 + 1.5 + 0.25, 0.25], rtol=1e-6)
    assert model.feature_names == ("a", "b", "c") and model.n_features == 3


def test_column_output_is_flattened(onnx_linear: Callable[..., bytes]) -> None:
    model = LoadedModel(artifact(onnx_linear([1.0], output_2d=True), ["a"]))
    assert model.predict(np.zeros((4, 1), np.float32)).shape == (4,)


def test_skl2onnx_logistic_matches_scikit_learn(
    onnx_logistic: Callable[..., tuple[bytes, Any]],
) -> None:
    blob, est = onnx_logistic(4)
    model = LoadedModel(artifact(blob, ["a", "b", "c", "d"]))
    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), est.predict_proba(x)[:, 1], atol=1e-5)


def test_tampered_bytes_are_refused(onnx_linear: Callable[..., bytes]) -> None:
    blob = onnx_linear([1.0, 2.0])
    good_sha = hashlib.sha256(blob).hexdigest()
    tampered = blob.replace(b"linear", b"lineat")
    with pytest.raises(HashMismatch, match="sha256"):
        LoadedModel(artifact(tampered, ["a", "b"], good_sha))


def test_session_is_tuned_for_latency() -> None:
    opts = session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1)
    assert opts.execution_mode.name == "ORT_SEQUENTIAL"
    assert opts.graph_optimization_level.name == "ORT_ENABLE_ALL"


def _graph(inputs: list[Any], outputs: list[Any], nodes: list[Any]) -> bytes:
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model.SerializeToString()


F = TensorProto.FLOAT


@pytest.mark.parametrize(
    ("blob", "names", "problem"),
    [
        (
            _graph(
                [helper.make_tensor_value_info("x", F, [None, 2])],
                [helper.make_tensor_value_info("prediction", F, [None, 2])],
                [helper.make_node("Identity", ["x"], ["prediction"])],
            ),
            ["a", "b"],
            "input named 'input'",
        ),
        (
            _graph(
                [helper.make_tensor_value_info("input", F, [None, 2])],
                [helper.make_tensor_value_info("out", F, [None, 2])],
                [helper.make_node("Identity", ["input"], ["out"])],
            ),
            ["a", "b"],
            "output named 'prediction'",
        ),
        (
            _graph(
                [helper.make_tensor_value_info("input", F, [None, 2])],
                [helper.make_tensor_value_info("prediction", F, [None, 2])],
                [helper.make_node("Identity", ["input"], ["prediction"])],
            ),
            ["a", "b", "c"],
            "does not match",
        ),
        (
            _graph(
                [helper.make_tensor_value_info("input", F, [None, 2])],
                [helper.make_tensor_value_info("prediction", F, [None, 2])],
                [helper.make_node("Identity", ["input"], ["prediction"])],
            ),
            ["a", "b"],
            "output shape",
        ),
        (b"definitely not onnx", ["a"], "cannot load"),
    ],
)
def test_contract_violations_are_refused(blob: bytes, names: list[str], problem: str) -> None:
    with pytest.raises(BadInput, match=problem):
        LoadedModel(artifact(blob, names))


def test_no_pickle_on_the_load_path() -> None:
    """Serving never unpickles: nothing in the serving package imports pickle or joblib."""
    import ast
    from pathlib import Path

    import tradeloop.serving as serving

    for path in Path(serving.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not {n.split(".")[0] for n in names} & {
                "pickle",
                "joblib",
                "cloudpickle",
                "dill",
            }, path
