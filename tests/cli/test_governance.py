"""The issue's check, through the real CLI: tokens, roles, manual approval, honest canaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.training.conftest import shrink
from tradeloop.templates import init_project

KEEP_FOUR = {"    symbols: [AAA, BBB, CCC, DDD]": "    symbols: [AAA, BBB, CCC, DDD]"}


def _token(run: Run, root: Path, *args: str) -> str:
    r = run("tokens", "create", *args, "--json", cwd=root)
    assert r.code == 0, r.err
    return str(r.json()["token"])


def test_token_bootstrap_and_admin_only_creation(run: Run, project: Path) -> None:
    r = run("tokens", "create", "--role", "operator", "--user", "bob@example.com", cwd=project)
    assert r.code == 2 and "create the first admin" in r.err
    admin = _token(run, project, "--role", "admin", "--user", "alice@example.com")
    again = run("tokens", "create", "--role", "admin", "--user", "m@example.com", cwd=project)
    assert again.code == 2 and "needs an admin token once an admin exists" in again.err
    op = _token(run, project, "--role", "operator", "--user", "bob@example.com", "--token", admin)
    weak = run(
        "tokens", "create", "--role", "admin", "--user", "m@example.com", "--token", op, cwd=project
    )
    assert weak.code == 2 and "bob@example.com has role operator" in weak.err
    env_made = run(
        "tokens", "create", "--role", "admin", "--user", "carol@example.com", "--json",
        cwd=project, env={"TRADELOOP_TOKEN": admin},
    )  # fmt: skip
    assert env_made.code == 0, env_made.err
    audit = run("audit", "list", "--json", cwd=project).json()
    creators = [e["actor"] for e in audit if e["action"] == "token.create"]
    assert creators == ["alice@example.com"] * 3


def test_validate_refuses_a_canary_four_symbols_cannot_express(run: Run, project: Path) -> None:
    spec = project / "tradeloop.yaml"
    ok = run("validate", "--json", cwd=project)
    assert ok.code == 0, ok.err
    assert [s["realized_pct"] for s in ok.json()["canary_splits"]] == [25.0, 50.0]
    spec.write_text(spec.read_text().replace("{weight: 25, pause: 2h}", "{weight: 10, pause: 2h}"))
    bad = run("validate", cwd=project)
    assert bad.code == 2
    assert "10% cannot be expressed with 4 sticky unit(s)" in bad.err and "25, 50, 75" in bad.err


@pytest.mark.slow
def test_manual_approval_holds_for_deploy_and_promote(run: Run, tmp_path: Path) -> None:
    spec = init_project(tmp_path / "gov", "gov")
    shrink(spec, **KEEP_FOUR, **{"  approval: auto ": "  approval: manual "})
    root = spec.parent
    admin = _token(run, root, "--role", "admin", "--user", "alice@example.com")
    op = _token(run, root, "--role", "operator", "--user", "bob@example.com", "--token", admin)
    ap = _token(run, root, "--role", "approver", "--user", "carol@example.com", "--token", admin)
    trained = run("train", "--json", "--token", op, cwd=root, timeout=600)
    assert trained.code == 0 and trained.json()["version"] == "1", trained.err
    shown = run("models", "show", "1", "--json", cwd=root).json()
    assert shown["tags"]["registered_by"] == shown["tags"]["triggered_by"] == "bob@example.com"
    bad = run("train", "--token", "tl_not-a-token", cwd=root)
    assert bad.code == 2 and "unknown, revoked or expired" in bad.err

    nobody = run("deploy", "1", cwd=root)
    assert nobody.code == 2 and "deploy needs a token" in nobody.err
    unapproved = run("deploy", "1", "--token", op, cwd=root)
    assert unapproved.code == 2 and "not approved" in unapproved.err
    promote = run("models", "promote", "1", "--token", op, cwd=root)
    assert promote.code == 2 and "not approved" in promote.err
    glass = run("deploy", "1", "--token", op, "--override-approval", "--reason", "x", cwd=root)
    assert glass.code == 2 and "needs role admin" in glass.err
    by_operator = run("models", "approve", "1", "--token", op, cwd=root)
    assert by_operator.code == 2 and "needs role approver" in by_operator.err

    assert run("models", "approve", "1", "--token", ap, "--reason", "reviewed", cwd=root).code == 0
    deployed = run("deploy", "1", "--token", op, "--json", cwd=root)
    assert deployed.code == 0, deployed.err
    assert deployed.json()["serving"][0]["version"] == "1"
    canary = run("deploy", "1", "--weight", "10", "--token", op, cwd=root)
    assert canary.code == 2 and "achievable weights: 25, 50, 75" in canary.err

    audit = run("audit", "list", "--json", cwd=root).json()
    steps = {(e["action"], e["actor"]) for e in audit}
    assert ("model.approve", "carol@example.com") in steps
    assert ("deployment.apply", "bob@example.com") in steps
    assert ("model.register", "bob@example.com") in steps  # training is tied to its user too
