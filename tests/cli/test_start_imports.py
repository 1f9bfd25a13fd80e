"""Short commands start fast because they don't import the heavy libraries (issue 9).

Each check runs in a fresh interpreter, so nothing another test imported can hide an import.
The start times themselves are measured by bench/cli_start.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tradeloop.registry.mlflow_registry import COMPLETE_TAG

HEAVY = ("mlflow", "scipy", "sqlalchemy", "alembic", "lightgbm", "onnx", "onnxruntime")

# Runs the Typer app in-process on each argv, then prints which HEAVY modules got imported.
PROBE = """
import contextlib, io, json, sys
from tradeloop.cli import app
import typer.main
typer.main.get_command(app)  # build every command and option, as --help does
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            app(argv, prog_name="tradeloop")
        except SystemExit as exc:
            assert exc.code in (0, None), (argv, exc.code)
heavy = json.loads(sys.argv[2])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def _imported(argvs: list[list[str]], cwd: Path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRADELOOP_HOME", "TRADELOOP_DB_URL")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argvs), json.dumps(heavy)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted({m.split(".")[0] for m in json.loads(proc.stdout.splitlines()[-1])})


def test_import_and_help_pull_in_no_heavy_library(tmp_path: Path) -> None:
    helps = [["--help"], ["drift", "--help"], ["models", "--help"], ["status", "--help"]]
    assert _imported(helps, tmp_path) == [], "import these inside the command that needs them"


def test_validate_pulls_in_no_heavy_library(project: Path) -> None:
    assert _imported([["validate"], ["validate", "--json"]], project) == []


def test_status_reads_without_any_heavy_library(run: Run, project: Path) -> None:
    assert run("status", cwd=project).code == 0  # the first open creates the database
    # from then on the DB-API driver reads it (store.reads): no SQLAlchemy either
    assert _imported([["status"], ["status", "--json"]], project) == []


REGISTER = """
import sys
from mlflow.tracking import MlflowClient
uri, name, tag = sys.argv[1:4]
c = MlflowClient(tracking_uri=uri, registry_uri=uri)
c.create_registered_model(name)
for complete in (True, False):
    c.create_model_version(name, "file:///nowhere", tags={tag: "true"} if complete else {})
c.set_registered_model_alias(name, "champion", "1")
c.set_registered_model_alias(name, "challenger", "2")  # incomplete: reads as none
"""


@pytest.mark.slow
def test_status_reads_a_real_registry_without_mlflow(run: Run, project: Path) -> None:
    uri = f"sqlite:///{project / '.tradeloop' / 'mlflow.db'}"
    name = run("validate", "--json", cwd=project).json()["name"]
    (project / ".tradeloop").mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", REGISTER, uri, name, COMPLETE_TAG], check=True, timeout=300
    )
    r = run("status", "--json", cwd=project)
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["actual"]["champion"], doc["actual"]["challenger"]) == ("1", None)
    assert _imported([["status", "--json"]], project) == []
