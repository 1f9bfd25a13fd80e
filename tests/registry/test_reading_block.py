"""`Registry.reading()`: one MLflow read per model inside a reconcile, never a stale one after
a write made through any Registry of the process, and nothing cached outside the block."""

from __future__ import annotations

from pathlib import Path

from tradeloop.registry.mlflow_registry import CHALLENGER, Registry


def _count(registry: Registry) -> list[int]:
    calls = [0]
    real = registry._read_all

    def counting(name: str):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(name)

    registry._read_all = counting  # type: ignore[method-assign]
    return calls


def test_reads_once_and_sees_writes_from_another_registry(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    reader, writer = Registry.open(uri), Registry.open(uri)
    writer.client.create_registered_model("m")
    calls = _count(reader)
    with reader.reading():
        assert reader.versions("m") == [] and reader.by_alias("m", CHALLENGER) is None
        assert reader.versions("m") == []
        assert calls[0] == 1  # one read served three questions
        writer.client.create_model_version("m", str(tmp_path), tags={"tradeloop.complete": "true"})
        writer.set_alias("m", CHALLENGER, "1")  # a write through another Registry
        got = reader.by_alias("m", CHALLENGER)
        assert got is not None and got.version == "1"
        assert calls[0] == 2
    writer.client.set_model_version_tag("m", "1", "tradeloop.status", "rejected")  # raw client
    assert reader.versions("m")[0].rejected  # outside the block, always MLflow itself
    assert calls[0] == 3
