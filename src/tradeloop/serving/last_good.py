"""The last known good model per variant, kept on local disk so it survives a restart.

In memory, a variant whose new version fails verification keeps serving what it had. After a
restart there is nothing in memory, so without this a tampered artifact meant 503 on every
request. Each time a variant serves a version that loaded and verified, its bytes are kept
here; a restart whose deployed version fails falls back to them, and the gateway reports
itself degraded.

Layout under `<state_dir>/last_good/`:

    blobs/<sha256>.onnx                   the verified bytes, content-addressed
    <model>.<variant>.json                {"version", "sha256", "feature_names"}

Writes are a temporary file then `os.replace`, blob before pointer, so a kill at any instant
leaves the previous pointer or the new one, each naming a complete blob. Reading checks the
blob's sha256 against the pointer again: the cache is as untrusted as any other source.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import tempfile
from pathlib import Path

from tradeloop.errors import BadInput
from tradeloop.serving.source import ModelArtifact, parse_schema

log = logging.getLogger(__name__)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LastGood:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self._known: dict[tuple[str, str], tuple[str, str]] = {}  # (model, variant) -> (ver, sha)

    def _pointer(self, model_name: str, variant: str) -> Path:
        return self.root / f"{model_name}.{variant}.json"

    def remember(self, variant: str, artifact: ModelArtifact) -> None:
        """Keep `artifact` (already verified) as `variant`'s last good version."""
        sha = hashlib.sha256(artifact.onnx_bytes).hexdigest()
        key = (artifact.model_name, variant)
        if self._known.get(key) == (artifact.version, sha):
            return
        self.blobs.mkdir(parents=True, exist_ok=True)
        blob = self.blobs / f"{sha}.onnx"
        if not blob.exists():
            _write_atomic(blob, artifact.onnx_bytes)
        pointer = {
            "version": artifact.version,
            "sha256": sha,
            "feature_names": list(artifact.feature_names),
        }
        _write_atomic(self._pointer(*key), json.dumps(pointer).encode())
        self._known[key] = (artifact.version, sha)
        self._collect()

    def recall(self, model_name: str, variant: str) -> ModelArtifact | None:
        """`variant`'s last good artifact if one is kept and still hashes right, else None."""
        path = self._pointer(model_name, variant)
        try:
            doc = json.loads(path.read_text())
            version, sha = str(doc["version"]), str(doc["sha256"])
            names = parse_schema(json.dumps({"feature_names": doc["feature_names"]}), str(path))
            data = (self.blobs / f"{sha}.onnx").read_bytes()
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, BadInput) as exc:
            log.error("ignoring the last-good record %s: %s", path, exc)
            return None
        if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), sha):
            log.error(
                "ignoring the last-good copy of %s %s: its bytes changed", model_name, variant
            )
            return None
        return ModelArtifact(model_name, version, data, names, sha)

    def _collect(self) -> None:
        """Delete blobs no pointer names any more (a variant moved on)."""
        named = set()
        for p in self.root.glob("*.json"):
            try:
                named.add(str(json.loads(p.read_text())["sha256"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        for blob in self.blobs.glob("*.onnx"):
            if blob.stem not in named:
                blob.unlink(missing_ok=True)
