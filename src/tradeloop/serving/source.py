"""Where the gateway gets model artifacts: a `ModelSource` hands over ONNX bytes plus schema.

The gateway never trusts a source: the runtime checks `sha256(onnx_bytes)` against
`expected_sha256` before it builds a session. The MLflow-registry source (artifact plus the
version's `onnx_sha256` tag) lives with the registry; `DirectorySource` serves tests and
air-gapped hosts from a folder laid out as

    <root>/<model_name>/<version>/model.onnx
    <root>/<model_name>/<version>/schema.json   {"feature_names": ["ret_1", ...]}
    <root>/<model_name>/<version>/sha256        hex digest of model.onnx
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tradeloop.errors import BadInput, NotFound
from tradeloop.serving.anomaly import PROFILE_FILE, read_profile

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class ModelArtifact:
    model_name: str
    version: str
    onnx_bytes: bytes = field(repr=False)
    feature_names: list[str]
    expected_sha256: str
    profile: dict[str, Any] | None = field(default=None, repr=False)  # reference profile


class ModelSource(Protocol):
    def fetch(self, model_name: str, version: str) -> ModelArtifact:
        """The artifact of one model version; NotFound if there is none."""
        ...


def _segment(kind: str, value: str) -> str:
    """Names become path segments, so refuse anything that could climb out of the root."""
    if not _SAFE.match(value) or value in (".", ".."):
        raise BadInput(f"{kind} {value!r} is not a safe name (letters, digits, '.', '_', '-')")
    return value


def parse_schema(text: str | bytes, where: str) -> list[str]:
    """`{"feature_names": [...]}` to a list of unique, non-empty names."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{where}: not JSON: {exc}") from exc
    names = doc.get("feature_names") if isinstance(doc, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise BadInput(f"{where}: needs 'feature_names', a non-empty list of strings")
    if len(set(names)) != len(names):
        raise BadInput(f"{where}: duplicate feature names")
    return names


class DirectorySource:
    """Model versions stored as plain files (see the module docstring for the layout)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, model_name: str, version: str) -> Path:
        return self.root / _segment("model name", model_name) / _segment("version", version)

    def fetch(self, model_name: str, version: str) -> ModelArtifact:
        d = self._dir(model_name, version)
        try:
            onnx_bytes = (d / "model.onnx").read_bytes()
            schema = (d / "schema.json").read_text()
            sha = (d / "sha256").read_text().strip().lower()
        except FileNotFoundError as exc:
            raise NotFound(
                f"model {model_name!r} version {version!r}: {exc.filename} is missing"
            ) from exc
        names = parse_schema(schema, str(d / "schema.json"))
        profile = read_profile(d / PROFILE_FILE)
        return ModelArtifact(model_name, version, onnx_bytes, names, sha, profile)

    def put(
        self, model_name: str, version: str, onnx_bytes: bytes, feature_names: list[str]
    ) -> Path:
        """Write a version (model, schema, digest); for tests and for exporting to a folder."""
        d = self._dir(model_name, version)
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.onnx").write_bytes(onnx_bytes)
        (d / "schema.json").write_text(json.dumps({"feature_names": list(feature_names)}))
        (d / "sha256").write_text(hashlib.sha256(onnx_bytes).hexdigest() + "\n")
        return d
