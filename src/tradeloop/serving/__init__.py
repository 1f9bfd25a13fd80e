"""The serving gateway: MLflow's scoring protocol, the Open Inference Protocol and trading
endpoints in front of ONNX models, with weighted/sticky/shadow routing, hot swaps that drop
no request, a Parquet prediction log and Prometheus metrics.

    from tradeloop.serving import DirectorySource, build_app, serve

    app = build_app(store, "mymodel", DirectorySource("models/"), state_dir="state/")
    serve(app, host="0.0.0.0", port=8080)

A protocol is a plug-in (`serving.protocol`): `register_protocol(name, factory)`, then prove it
with `tradeloop.serving.conformance.check_serving_protocol(factory)`.
"""

from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.models import ModelManager, Snapshot
from tradeloop.serving.predlog import PredictionLog, PredictionRecord
from tradeloop.serving.protocol import ProtocolOptions, ServingProtocol
from tradeloop.serving.protocol_registry import register_protocol
from tradeloop.serving.router import Router, bucket
from tradeloop.serving.runtime import LoadedModel
from tradeloop.serving.server import build_app, serve, uvicorn_config
from tradeloop.serving.source import DirectorySource, ModelArtifact, ModelSource

__all__ = [
    "DirectorySource",
    "GatewayMetrics",
    "LoadedModel",
    "ModelArtifact",
    "ModelManager",
    "ModelSource",
    "PredictionLog",
    "PredictionRecord",
    "ProtocolOptions",
    "Router",
    "ServingProtocol",
    "Snapshot",
    "bucket",
    "build_app",
    "register_protocol",
    "serve",
    "uvicorn_config",
]
