"""The package's public API is deliberate: this list changes only on purpose."""

from __future__ import annotations

import tradeloop.serving as serving


def test_public_api() -> None:
    assert serving.__all__ == sorted(serving.__all__)
    assert serving.__all__ == [
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
    for name in serving.__all__:
        assert getattr(serving, name) is not None
