"""Secrets by reference: `${ENV}` and `file:` resolve where used; literals are flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeloop.errors import BadInput
from tradeloop.spec.secrets import is_reference, literal_secrets, resolve_secret


def test_env_and_file_references_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/T0/secret")
    assert resolve_secret("${HOOK_URL}", "webhook ops") == "https://hooks.example.com/T0/secret"
    secret = tmp_path / "hook"
    secret.write_text("https://hooks.example.com/from-file\n")
    assert resolve_secret(f"file:{secret}", "webhook ops") == "https://hooks.example.com/from-file"
    assert resolve_secret("http://127.0.0.1:9/x", "w") == "http://127.0.0.1:9/x"


def test_missing_references_name_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_URL", raising=False)
    with pytest.raises(BadInput, match="webhook ops: environment variable NOPE_URL is not set"):
        resolve_secret("${NOPE_URL}", "webhook ops")
    with pytest.raises(BadInput, match="cannot read secret file"):
        resolve_secret(f"file:{tmp_path / 'absent'}", "webhook ops")
    (tmp_path / "empty").write_text("  \n")
    with pytest.raises(BadInput, match="is empty"):
        resolve_secret(f"file:{tmp_path / 'empty'}", "webhook ops")


def test_literal_webhook_urls_are_flagged() -> None:
    assert is_reference("${A}") and is_reference("file:/run/secrets/a")
    assert not is_reference("https://hooks.example.com/T0/secret")
    warnings = literal_secrets({"ops": "https://hooks.example.com/T0/secret", "ok": "${HOOK}"})
    assert len(warnings) == 1 and "monitoring.webhooks.ops.url is written literally" in warnings[0]
