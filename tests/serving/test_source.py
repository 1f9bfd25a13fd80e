"""DirectorySource: the folder layout round-trips; unsafe or incomplete versions are refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tradeloop.errors import BadInput, NotFound
from tradeloop.serving.source import DirectorySource, parse_schema


def test_put_then_fetch_round_trips(tmp_path: Path, onnx_linear: Callable[..., bytes]) -> None:
    blob = onnx_linear([1.0, 2.0])
    src = DirectorySource(tmp_path)
    folder = src.put("m", "3", blob, ["a", "b"])
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "schema.json", "sha256"]
    art = src.fetch("m", "3")
    assert (art.model_name, art.version, art.feature_names) == ("m", "3", ["a", "b"])
    assert art.onnx_bytes == blob
    assert art.expected_sha256 == hashlib.sha256(blob).hexdigest()


def test_missing_version_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"model\.onnx"):
        DirectorySource(tmp_path).fetch("m", "1")


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "", ".hidden"])
def test_names_cannot_leave_the_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput, match="not a safe name"):
        DirectorySource(tmp_path).fetch(name, "1")
    with pytest.raises(BadInput, match="not a safe name"):
        DirectorySource(tmp_path).fetch("m", name)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ('{"feature_names": []}', "non-empty list"),
        ('{"feature_names": ["a", 3]}', "non-empty list"),
        ('["a"]', "non-empty list"),
        ('{"feature_names": ["a", "a"]}', "duplicate"),
    ],
)
def test_schema_errors_are_named(text: str, problem: str) -> None:
    with pytest.raises(BadInput, match=problem):
        parse_schema(text, "schema.json")


def test_training_input_schema_json_is_accepted() -> None:
    """The training side's InputSchema JSON carries more keys; only feature_names matters."""
    doc = '{"feature_names": ["a", "b"], "task": "classification", "dtype": "float32"}'
    assert parse_schema(doc, "schema.json") == ["a", "b"]
