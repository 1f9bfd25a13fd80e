"""Terminal errors park a controller for its pipeline, with the reason in status and metrics;
a fix committed to git un-parks it on the next cycle (controller-runtime's terminal errors,
with a poll on the tracked branch in place of a watch)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import generate_latest
from tests.training.conftest import shrink

from tradeloop.clock import SimulatedClock
from tradeloop.control.assembly import assemble
from tradeloop.control.status_report import status_report
from tradeloop.gitops.desired import Pin
from tradeloop.project import Project
from tradeloop.templates import git as _git
from tradeloop.templates import git_commit, init_project


def _project(tmp_path: Path) -> tuple[Path, Project, SimulatedClock]:
    spec = init_project(tmp_path / "repo", "park")
    shrink(spec)
    git_commit(spec.parent, "spec", "tradeloop.yaml")
    clock = SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
    project = Project(Project.load(spec.parent).spec, spec, clock)
    return spec.parent, project, clock


def _parked(project: Project) -> dict[str, dict[str, str] | None]:
    return {c["controller"]: c.get("parked") for c in status_report(project)["controllers"]}


def test_a_pin_to_a_missing_version_parks_the_deployer_until_git_fixes_it(
    tmp_path: Path,
) -> None:
    root, project, _clock = _project(tmp_path)
    (root / "production.yaml").write_text(Pin("park", "99").to_yaml())
    git_commit(root, "pin v99", "production.yaml")
    proc = assemble(project, ["deployer"])
    [run] = proc.manager.run_once()
    assert run.outcome == "terminal"
    parked = _parked(project)["deployer"]
    assert parked is not None and parked["reason"] == "missing_version"
    assert "pins v99" in parked["message"]
    text = generate_latest(proc.registry).decode().splitlines()
    assert 'tradeloop_controller_parked{controller="deployer",reason="missing_version"} 1.0' in text
    assert proc.manager.run_once() == []  # parked: not retried

    _git(root, "rm", "-q", "production.yaml")
    git_commit(root, "unpin")
    [again] = proc.manager.run_once()  # the same simulated instant: the commit un-parks it
    assert again.outcome == "ok", again.message
    assert _parked(project)["deployer"] is None
    text = generate_latest(proc.registry).decode().splitlines()
    assert 'tradeloop_controller_parked{controller="deployer",reason="missing_version"} 0.0' in text


def test_a_spec_in_git_that_does_not_validate_parks_every_controller(tmp_path: Path) -> None:
    root, project, _clock = _project(tmp_path)
    good = (root / "tradeloop.yaml").read_text()
    (root / "tradeloop.yaml").write_text(good.replace("  interval: 1h", "  interval: -5m"))
    git_commit(root, "a bad interval", "tradeloop.yaml")
    proc = assemble(project, ["deployer", "monitor"])
    runs = proc.manager.run_once()
    assert [r.outcome for r in runs] == ["terminal", "terminal"]
    doc = status_report(project)
    assert "interval" in doc["desired"]["error"]
    for name, parked in _parked(project).items():
        assert parked is not None and parked["reason"] == "invalid_spec", name
        assert "interval" in parked["message"]

    (root / "tradeloop.yaml").write_text(good)
    git_commit(root, "fix the interval", "tradeloop.yaml")
    assert [r.outcome for r in proc.manager.run_once()] == ["ok", "ok"]
    after = _parked(project)
    assert after["deployer"] is None and after["monitor"] is None
    assert "error" not in status_report(project)["desired"]
    proc.close()
