"""Selection-aware gates end to end: deflated Sharpe and PBO from a real tuned training run."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.training.conftest import shrink

from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.templates import init_project
from tradeloop.training.pipeline import train


@pytest.mark.slow
def test_deflated_sharpe_and_pbo_are_reported_and_gate(tmp_path: Path) -> None:
    spec = init_project(tmp_path / "sel", "sel")
    shrink(
        spec,
        **{
            "    trials: 0": "    trials: 4",
            "  min_sharpe: 0.0": (
                "  min_sharpe: 0.0\n  min_deflated_sharpe: 1.0\n  max_pbo: 0.0\n"
                "  max_segment_drawdown: 0.001"
            ),
        },
    )
    p = Project.load(spec)
    r = train(p)
    doc = r.to_dict()
    assert 0.0 <= doc["deflated_sharpe"] < 1.0 and 0.0 < doc["pbo"] <= 1.0
    sel = doc["selection"]
    assert sel["trials"] == {"tuning": 4, "earlier_runs": 0} and sel["n_trials"] == 4
    assert sel["dsr"]["variance_source"] == "4 trials' Sharpe ratios"
    assert sel["pbo_detail"]["n_trials"] == 4
    # the deflated Sharpe is below the undeflated PSR: four trials raise the bar
    assert doc["deflated_sharpe"] < sel["dsr"]["psr"]
    # every one of the three gates refuses the version, naming itself
    assert r.version is None
    assert set(r.gates["failed"]) == {"min_deflated_sharpe", "max_pbo", "max_segment_drawdown"}
    assert doc["segments"]["max_segment_drawdown"] > 0.001
    run = Registry.for_project(p).client.get_run(r.run_id)
    assert run.data.metrics["deflated_sharpe"] == doc["deflated_sharpe"]
    assert run.data.metrics["pbo"] == doc["pbo"]
    assert run.data.metrics["selection_trials"] == 4
    # a second attempt counts the first: more trials, a higher bar
    again = train(p).to_dict()["selection"]
    assert again["trials"]["earlier_runs"] == 1
    assert again["n_trials"] > sel["n_trials"]
    assert again["dsr"]["expected_max_sharpe"] > 0
