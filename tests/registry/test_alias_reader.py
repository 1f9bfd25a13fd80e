"""The MLflow-free alias reader gives MlflowClient's answers, on real stores.

The same registry (complete, incomplete and deleted versions, two models) is read three ways:
MlflowClient (the reference), the SQL reader on the embedded SQLite store, and the REST reader
against a real `mlflow server` on that store. If MLflow changes its schema or API, these fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.net import free_port

from tradeloop.registry.alias_reader import alias_versions
from tradeloop.registry.mlflow_registry import COMPLETE_TAG, quiet_mlflow

ALIASES = ("champion", "challenger", "candidate", "retired", "never-set")
NAMES = ("pipe", "other", "never-registered")


def _populate(uri: str, artifacts: Path) -> None:
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    src = artifacts.as_uri()
    done = {COMPLETE_TAG: "true"}
    client.create_registered_model("pipe")
    for tags in (done, done, {}, done):  # v3 never finished registering
        client.create_model_version("pipe", src, tags=tags)
    client.set_registered_model_alias("pipe", "champion", "1")
    client.set_registered_model_alias("pipe", "challenger", "2")
    client.set_registered_model_alias("pipe", "candidate", "3")
    client.set_registered_model_alias("pipe", "retired", "4")
    client.delete_model_version("pipe", "4")  # takes its alias with it
    client.create_registered_model("other")
    client.create_model_version("other", src, tags=done)
    client.set_registered_model_alias("other", "challenger", "1")


def _mlflow_answer(uri: str, name: str) -> dict[str, str | None]:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found: dict[str, str | None] = {}
    for alias in ALIASES:
        try:
            mv = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            found[alias] = None
            continue
        found[alias] = str(mv.version) if (mv.tags or {}).get(COMPLETE_TAG) == "true" else None
    return found


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("alias-reader")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    _populate(uri, root / "artifacts")
    return uri, root


def test_sql_reader_matches_mlflow_client(tracking: tuple[str, Path]) -> None:
    uri, _ = tracking
    for name in NAMES:
        assert alias_versions(uri, name, ALIASES) == _mlflow_answer(uri, name), name
    # The registry above is not trivial: each kind of answer occurs.
    assert _mlflow_answer(uri, "pipe") == {
        "champion": "1",
        "challenger": "2",
        "candidate": None,
        "retired": None,
        "never-set": None,
    }


def test_sql_reader_on_a_store_never_written(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert alias_versions(uri, "pipe", ALIASES) == dict.fromkeys(ALIASES)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.fixture(scope="module")
def mlflow_server(tracking: tuple[str, Path]) -> Iterator[str]:
    uri, root = tracking
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--backend-store-uri", uri, "--default-artifact-root",
         (root / "artifacts").as_uri(), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its workers are stopped with it, as one process group
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {proc.stderr.read()!r}")  # type: ignore[union-attr]  # stderr is a pipe
            try:
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not become healthy in 120 s")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_rest_reader_matches_mlflow_client(tracking: tuple[str, Path], mlflow_server: str) -> None:
    uri, _ = tracking
    for name in NAMES:
        assert alias_versions(mlflow_server, name, ALIASES) == _mlflow_answer(uri, name), name
