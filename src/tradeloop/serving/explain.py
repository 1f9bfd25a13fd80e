"""Per-prediction attributions on request: `explain` on the trading and v2 endpoints.

The gateway scores with ONNX as always; when a request asks for explanations it also runs the
version's explainer (`evaluation.explain`: TreeSHAP for LightGBM, coefficient × standardized
value for linear models) on the very float32 features the model just scored, so the
attributions plus the base value sum to the raw score whose link is the returned prediction.

The explainer is fetched once per version and, like the ONNX file, checked against the digest
recorded at training (the version's `explainer_sha256` tag, or `explainer.sha256` beside it in
a model folder) before use. A version trained without one answers 409, naming the reason.
"""

from __future__ import annotations

import hmac
import threading
from pathlib import Path
from typing import Any

from tradeloop.errors import BadInput
from tradeloop.evaluation.explain import Explainer, encode, sha256
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.serving.gateway import Gateway, Scored
from tradeloop.serving.http import ApiError
from tradeloop.serving.source import DirectorySource

EXPLAINER_FILE = "explainer.json"
DIGEST_FILE = "explainer.sha256"
UNAVAILABLE = "EXPLANATIONS_UNAVAILABLE"


def wants(value: Any, where: str) -> bool:
    """An `explain` flag: JSON true/false, or the query strings true/false/1/0."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise ApiError(400, f"{where} must be true or false, got {value!r}")


def put_explainer(
    source: DirectorySource, model_name: str, version: str, doc: dict[str, Any]
) -> Path:
    """Store an explainer beside a version in a model folder (with its digest)."""
    d = source.root / model_name / version
    data = encode(doc)
    (d / EXPLAINER_FILE).write_bytes(data)
    (d / DIGEST_FILE).write_text(sha256(data) + "\n")
    return d / EXPLAINER_FILE


class Explanations:
    """Explainers by version, loaded on first use and verified; thread-safe."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self._cache: dict[str, Explainer] = {}
        self._lock = threading.Lock()

    def rows(self, scored: Scored) -> list[dict[str, Any]]:
        """One explanation per scored row, in the model's feature order."""
        model = scored.served.model
        explainer = self._explainer(model.version)
        if explainer.feature_names != model.feature_names:
            raise ApiError(
                409,
                f"version {model.version}'s explainer has features {list(explainer.feature_names)}"
                f", the model {list(model.feature_names)}",
                UNAVAILABLE,
            )
        return explainer.explain(scored.features).rows()

    def field(self, scored: Scored, explain: bool) -> dict[str, Any]:
        """`{"explanation": ...}` for the first row when asked, else nothing to add."""
        return {"explanation": self.rows(scored)[0]} if explain else {}

    def _explainer(self, version: str) -> Explainer:
        with self._lock:
            cached = self._cache.get(version)
        if cached is not None:
            return cached
        data, expected = self._fetch(version)
        if not hmac.compare_digest(sha256(data), expected.strip().lower()):
            raise ApiError(
                409,
                f"version {version}'s explainer does not match its recorded sha256; refusing it",
                "INTEGRITY_ERROR",
            )
        try:
            explainer = Explainer.from_bytes(data)
        except BadInput as exc:
            raise ApiError(
                409, f"version {version}'s explainer is unusable: {exc}", UNAVAILABLE
            ) from exc
        with self._lock:
            self._cache[version] = explainer
        return explainer

    def _fetch(self, version: str) -> tuple[bytes, str]:
        source, name = self.gw.manager.source, self.gw.model_name
        missing = ApiError(
            409,
            f"version {version} of {name!r} has no explainer (trained before explanations were "
            "recorded, or a model type without attributions); retrain to get them",
            UNAVAILABLE,
        )
        registry = getattr(source, "registry", None)  # a RegistrySource (importing it: a cycle)
        if isinstance(registry, Registry):
            try:
                v = registry.get(name, version)
                expected = v.tags.get("explainer_sha256")
                if not expected or v.run_id is None:
                    raise missing
                return registry.run_artifact(v.run_id, EXPLAINER_FILE).read_bytes(), expected
            except ApiError:
                raise
            except Exception as exc:  # the tracking store's own errors come in many types
                raise ApiError(503, f"cannot read version {version}'s explainer: {exc}") from exc
        if isinstance(source, DirectorySource):
            d = source.root / name / version
            try:
                return (d / EXPLAINER_FILE).read_bytes(), (d / DIGEST_FILE).read_text()
            except FileNotFoundError:
                raise missing from None
        raise ApiError(409, "this gateway's model source has no explanations", UNAVAILABLE)
