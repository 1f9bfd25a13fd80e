"""`tradeloop deploy`: refuses a tampered artifact before writing anything, and a champion
deployed by hand is the registry's `champion` too (the next training's gate sees it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.training.conftest import shrink
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION, ONNX_FILE, Registry
from tradeloop.registry.variants import register_variant
from tradeloop.security.identity import save_local_credential
from tradeloop.security.tokens import create_token
from tradeloop.store import deployments as dep
from tradeloop.templates import init_project
from tradeloop.training.pipeline import train


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    """v1 trained; v2 registered from v1's model (a variant: same lineage, own run)."""
    spec = init_project(tmp_path / "proj", "small")
    shrink(spec)
    p = Project.load(spec)
    train(p)
    reg = Registry.for_project(p)
    v1 = reg.get("small", "1")
    onnx, _ = reg.fetch_onnx("small", "1")
    register_variant(reg, v1, onnx, run_name="v2", reason="test", trained_at="2030-01-01")
    plain, _ = create_token(p.store, "ops", "operator", user="ops@example.com")
    save_local_credential(p.state_dir, plain)  # the CLI below acts as ops@example.com
    p.close()
    return spec.parent


def test_deploy_as_champion_moves_the_alias(run: Run, two_versions: Path) -> None:
    r = run("deploy", "1", "--json", cwd=two_versions)
    assert r.code == 0, r.err
    p = Project.load(two_versions / "tradeloop.yaml")
    reg = Registry.for_project(p)
    assert reg.by_alias("small", CHAMPION).version == "1"  # type: ignore[union-attr]
    r = run("deploy", "2", "--weight", "33", cwd=two_versions)  # a challenger: alias stays
    assert r.code == 0, r.err
    assert reg.by_alias("small", CHAMPION).version == "1"  # type: ignore[union-attr]
    r = run("deploy", "2", cwd=two_versions)
    assert r.code == 0, r.err
    assert reg.by_alias("small", CHAMPION).version == "2"  # type: ignore[union-attr]
    assert reg.by_alias("small", "previous").version == "1"  # type: ignore[union-attr]
    assert reg.by_alias("small", CHALLENGER) is None  # v2 was the challenger
    assert dep.current(p.store, "small") == [dep.Deployed("small", "champion", "2", "live", 100)]
    promotes = [e.subject for e in p.store.audit.list(action="model.promote")]
    assert promotes == ["model:small/1", "model:small/2"]
    r = run("deploy", "--rollback", cwd=two_versions)  # champion stays v2: nothing moves
    assert r.code == 0, r.err
    assert len(p.store.audit.list(action="model.promote")) == 2
    shown = run("models", "show", "2", "--json", cwd=two_versions)
    assert shown.code == 0 and shown.json()["aliases"] == [CHAMPION], shown.err
    listed = run("models", "list", "--json", cwd=two_versions)
    assert [(v["version"], v["aliases"]) for v in listed.json()] == [
        ("1", ["previous"]),
        ("2", [CHAMPION]),
    ]


def test_deploy_refuses_a_tampered_artifact(run: Run, two_versions: Path) -> None:
    assert run("deploy", "1", cwd=two_versions).code == 0
    p = Project.load(two_versions / "tradeloop.yaml")
    reg = Registry.for_project(p)
    before = dep.current(p.store, "small")
    audit_before = len(p.store.audit.list())
    onnx = reg.model_dir(reg.get("small", "2")) / ONNX_FILE
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    r = run("deploy", "2", cwd=two_versions)
    assert r.code == 1
    assert "sha256" in r.err and "does not match the registered onnx_sha256" in r.err
    assert dep.current(p.store, "small") == before  # nothing written
    assert len(p.store.audit.list()) == audit_before
    assert reg.by_alias("small", CHAMPION).version == "1"  # type: ignore[union-attr]
    r = run("models", "show", "7", cwd=two_versions)
    assert r.code != 0 and "no version '7'" in r.err
