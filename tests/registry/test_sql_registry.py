"""The MLflow-free SQL registry view gives `Registry`'s (MlflowClient's) answers, and its alias
writes are what MlflowClient then reads, on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tradeloop.errors import HashMismatch, NotFound
from tradeloop.registry.mlflow_registry import COMPLETE_TAG, ONNX_FILE, Registry
from tradeloop.registry.sql_registry import SqlRegistry, open_registry, verify_artifact

DONE = {COMPLETE_TAG: "true"}


def _populate(uri: str, artifacts: Path) -> None:
    reg = Registry.open(uri, str(artifacts))
    client = reg.client
    folder = artifacts / "model"
    folder.mkdir(parents=True)
    (folder / ONNX_FILE).write_bytes(b"onnx bytes")
    sha = hashlib.sha256(b"onnx bytes").hexdigest()
    client.create_registered_model("pipe")
    for tags in (DONE, DONE, {}, DONE, DONE):  # v3 never finished registering
        client.create_model_version(
            "pipe", folder.as_uri(), tags={**tags, "onnx_sha256": sha, "metric.sharpe": "1.5"}
        )
    client.set_registered_model_alias("pipe", "champion", "1")
    client.set_registered_model_alias("pipe", "challenger", "2")
    client.set_registered_model_alias("pipe", "retired", "4")
    client.delete_model_version("pipe", "4")
    client.create_registered_model("other")
    client.create_model_version("other", folder.as_uri(), tags=DONE)


@pytest.fixture(params=["sqlite", "postgres"])
def tracking(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        request.applymarker(pytest.mark.postgres)
        uri = str(request.getfixturevalue("pg_url"))
    _populate(uri, tmp_path / "artifacts")
    return uri


def _same(uri: str) -> None:
    mine, theirs = SqlRegistry(uri), Registry.open(uri)
    try:
        for name in ("pipe", "other", "never-registered"):
            for incomplete in (False, True):
                a = mine.versions(name, include_incomplete=incomplete)
                b = theirs.versions(name, include_incomplete=incomplete)
                assert [v.to_dict() for v in a] == [v.to_dict() for v in b], (name, incomplete)
            for alias in ("champion", "challenger", "retired", "never-set"):
                assert mine.by_alias(name, alias) == theirs.by_alias(name, alias)
        assert mine.get("pipe", "2") == theirs.get("pipe", "2")
        for bad in ("3", "4", "99", "x"):
            with pytest.raises(NotFound):
                mine.get("pipe", bad)
    finally:
        mine.close()


def test_reads_match_mlflow(tracking: str) -> None:
    _same(tracking)
    versions = SqlRegistry(tracking).versions("pipe")
    assert [(v.version, v.aliases) for v in versions] == [
        ("1", ["champion"]),
        ("2", ["challenger"]),
        ("5", []),
    ]


def test_alias_writes_are_what_mlflow_reads(tracking: str) -> None:
    mine = SqlRegistry(tracking)
    mine.set_alias("pipe", "champion", "5")
    mine.set_alias("pipe", "previous", "1")
    mine.delete_alias("pipe", "challenger")
    with pytest.raises(NotFound):
        mine.set_alias("pipe", "champion", "3")  # incomplete: refused, as Registry refuses
    client = Registry.open(tracking).client
    assert str(client.get_model_version_by_alias("pipe", "champion").version) == "5"
    assert str(client.get_model_version_by_alias("pipe", "previous").version) == "1"
    aliases = client.get_registered_model("pipe").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": "5", "previous": "1"}
    _same(tracking)


def test_verify_artifact_refuses_a_tampered_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _populate(uri, tmp_path / "artifacts")
    reg = open_registry(uri)
    assert isinstance(reg, SqlRegistry)
    v = reg.get("pipe", "1")
    verify_artifact(reg, v)
    (tmp_path / "artifacts" / "model" / ONNX_FILE).write_bytes(b"tampered")
    with pytest.raises(HashMismatch, match="does not match the registered onnx_sha256"):
        verify_artifact(reg, v)
    (tmp_path / "artifacts" / "model" / ONNX_FILE).unlink()
    with pytest.raises(NotFound, match=r"no model\.onnx"):
        verify_artifact(reg, v)
