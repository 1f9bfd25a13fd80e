"""TRADELOOP_ARTIFACT_ROOT: a URI root is passed to MLflow as given (the deploy stacks use
`mlflow-artifacts:/` through a proxying server, or an object store); a path stays a local
folder. The proxied case runs against a real `mlflow server --serve-artifacts`."""

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

from tradeloop.registry.mlflow_registry import Registry


def test_uri_roots_pass_through_and_paths_stay_local(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    s3 = Registry.open(uri, "s3://bucket/mlflow")
    exp = s3.client.get_experiment(s3.experiment_id("a"))
    assert exp.artifact_location == "s3://bucket/mlflow"
    local = Registry.open(uri, str(tmp_path / "arts"))
    exp = local.client.get_experiment(local.experiment_id("b"))
    assert exp.artifact_location == (tmp_path / "arts").resolve().as_uri()
    assert (tmp_path / "arts").is_dir()


def test_project_reads_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tradeloop.project import Project
    from tradeloop.templates import init_project

    project = Project.load(init_project(tmp_path / "repo", "p"))
    monkeypatch.delenv("TRADELOOP_ARTIFACT_ROOT", raising=False)
    assert project.mlflow_artifacts == str(project.state_dir / "mlartifacts")
    monkeypatch.setenv("TRADELOOP_ARTIFACT_ROOT", "mlflow-artifacts:/tradeloop")
    assert project.mlflow_artifacts == "mlflow-artifacts:/tradeloop"


@pytest.fixture
def proxy_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    dest = tmp_path / "destination"
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--serve-artifacts", "--artifacts-destination", str(dest),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not become healthy in 120 s")
            time.sleep(0.3)
        yield base, dest
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_artifacts_go_through_the_proxying_server(
    proxy_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, dest = proxy_server
    reg = Registry.open(base, "mlflow-artifacts:/tradeloop")
    note = tmp_path / "note.txt"
    note.write_text("proxied")
    with reg.start_run("pipe", "r", {}) as run:
        run.log_artifact(note)
    stored = list(dest.rglob("note.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "proxied"
    assert dest / "tradeloop" in stored[0].parents
