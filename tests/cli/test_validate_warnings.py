"""`validate` warns when a git-tracked spec holds a webhook URL literally (a credential)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run
from tradeloop.templates import git_commit


def _with_webhook(project: Path, url: str) -> None:
    spec = project / "tradeloop.yaml"
    text = spec.read_text().replace(
        "  alerts:\n", f"  webhooks:\n    ops: {{url: '{url}'}}\n  alerts:\n", 1
    )
    spec.write_text(text)


def test_a_literal_url_in_a_tracked_spec_is_warned_about(run: Run, project: Path) -> None:
    _with_webhook(project, "https://hooks.slack.com/services/T0/B0/secret")
    git_commit(project, "a webhook", "tradeloop.yaml")
    r = run("validate", cwd=project)
    assert r.code == 0, r.err
    assert "monitoring.webhooks.ops.url is a literal URL in a git-tracked spec" in r.err
    doc = run("validate", "--json", cwd=project).json()
    assert doc["ok"] and len(doc["warnings"]) == 1 and "${ENV_VAR}" in doc["warnings"][0]


def test_a_url_by_reference_is_not(run: Run, project: Path) -> None:
    _with_webhook(project, "${OPS_WEBHOOK}")
    git_commit(project, "a webhook by reference", "tradeloop.yaml")
    doc = run("validate", "--json", cwd=project).json()
    assert doc["warnings"] == []


def test_an_untracked_spec_is_not(run: Run, tmp_path: Path, project: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "tradeloop.yaml").write_text((project / "tradeloop.yaml").read_text())
    _with_webhook(loose, "http://127.0.0.1:9000/hook")
    doc = run("validate", "--json", cwd=loose).json()
    assert doc["warnings"] == []
