"""The ONNX runtime: verified bytes in, a low-latency session out.

ONNX only, so loading a model can never run code (no pickle anywhere on this path), and the
bytes must hash to the digest the registry recorded before onnxruntime sees them.

The model contract: one float32 input `input` of shape [N, n_features] and one float32 output
`prediction` of shape [N] or [N, 1].
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import onnxruntime as ort

from tradeloop.errors import BadInput, HashMismatch
from tradeloop.serving.anomaly import FeatureBounds
from tradeloop.serving.source import ModelArtifact

INPUT_NAME = "input"
OUTPUT_NAME = "prediction"


def session_options() -> ort.SessionOptions:
    """One thread per request and no inter-op pool: tiny graphs pay more for threads than
    they gain, and the server's concurrency comes from requests, not from inside a graph."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def verify(artifact: ModelArtifact) -> None:
    actual = hashlib.sha256(artifact.onnx_bytes).hexdigest()
    if not hmac.compare_digest(actual, artifact.expected_sha256.strip().lower()):
        raise HashMismatch(
            f"model {artifact.model_name!r} version {artifact.version!r}: sha256 of the ONNX "
            f"bytes is {actual}, the registry says {artifact.expected_sha256!r}; refusing it"
        )


class LoadedModel:
    """A verified, ready-to-run model version. `predict` is thread-safe (onnxruntime's `run`)."""

    __slots__ = (
        "_run",
        "_session",
        "bounds",
        "feature_index",
        "feature_names",
        "model_name",
        "n_features",
        "version",
    )

    def __init__(self, artifact: ModelArtifact) -> None:
        verify(artifact)
        try:
            session = ort.InferenceSession(
                artifact.onnx_bytes,
                sess_options=session_options(),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises several unrelated types for a bad graph
            raise BadInput(f"{_label(artifact)}: onnxruntime cannot load it: {exc}") from exc
        _check_contract(session, artifact)
        self._session = session
        self._run = session.run
        self.model_name = artifact.model_name
        self.version = artifact.version
        self.feature_names: tuple[str, ...] = tuple(artifact.feature_names)
        self.feature_index = {n: i for i, n in enumerate(self.feature_names)}
        self.n_features = len(self.feature_names)
        self.bounds = FeatureBounds.from_profile(artifact.profile, self.feature_names)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[N, n_features] float32 in, [N] float32 out."""
        out: np.ndarray = self._run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        return out.reshape(-1)


def _label(artifact: ModelArtifact) -> str:
    return f"model {artifact.model_name!r} version {artifact.version!r}"


def _check_contract(session: ort.InferenceSession, artifact: ModelArtifact) -> None:
    ins, outs = session.get_inputs(), session.get_outputs()
    where = _label(artifact)
    if len(ins) != 1 or ins[0].name != INPUT_NAME or ins[0].type != "tensor(float)":
        got = [(i.name, i.type) for i in ins]
        raise BadInput(f"{where}: needs one float32 input named 'input', has {got}")
    shape = ins[0].shape
    n = len(artifact.feature_names)
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != n):
        raise BadInput(f"{where}: input shape {shape} does not match [N, {n}] features")
    if len(outs) != 1 or outs[0].name != OUTPUT_NAME or outs[0].type != "tensor(float)":
        got = [(o.name, o.type) for o in outs]
        raise BadInput(f"{where}: needs one float32 output named 'prediction', has {got}")
    probe = np.zeros((2, n), dtype=np.float32)
    try:
        out = session.run([OUTPUT_NAME], {INPUT_NAME: probe})[0]
    except Exception as exc:
        raise BadInput(f"{where}: fails on a [2, {n}] probe: {exc}") from exc
    if out.size != 2:
        raise BadInput(
            f"{where}: output shape {list(out.shape)} for 2 rows; expected [2] or [2, 1]"
        )
