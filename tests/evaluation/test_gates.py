"""Gates: absolute thresholds, champion/challenger, and what every gate records."""

from __future__ import annotations

import json

import pytest

from tradeloop.evaluation.gates import evaluate_gates
from tradeloop.spec import ChampionGate, GatesSpec

GOOD = {"sharpe": 1.2, "max_drawdown": 0.1, "hit_rate": 0.55, "ic": 0.04, "n_bars": 500.0}
ALL = GatesSpec(
    min_sharpe=0.5,
    max_drawdown=0.2,
    min_hit_rate=0.5,
    min_ic=0.02,
    champion=ChampionGate(metric="sharpe", margin=0.1),
)


def by_name(report, name):
    return next(g for g in report.gates if g.name == name)


def test_all_pass_and_every_gate_is_recorded() -> None:
    rep = evaluate_gates(GOOD, ALL, {"sharpe": 1.0, "n_bars": 500.0})
    assert rep.passed and rep.failed == []
    assert [g.name for g in rep.gates] == [
        "min_sharpe",
        "max_drawdown",
        "min_hit_rate",
        "min_ic",
        "champion_sharpe",
    ]
    dd = by_name(rep, "max_drawdown")
    assert (dd.value, dd.threshold, dd.op, dd.passed) == (0.1, 0.2, "<=", True)
    champ = by_name(rep, "champion_sharpe")
    assert champ.threshold == pytest.approx(1.1) and champ.op == ">="
    assert "champion 1" in champ.reason and "margin 0.1" in champ.reason


@pytest.mark.parametrize(
    ("metric", "value", "gate"),
    [
        ("sharpe", 0.4, "min_sharpe"),
        ("max_drawdown", 0.25, "max_drawdown"),
        ("hit_rate", 0.49, "min_hit_rate"),
        ("ic", 0.0, "min_ic"),
    ],
)
def test_each_absolute_gate_fails_on_its_own(metric: str, value: float, gate: str) -> None:
    rep = evaluate_gates(GOOD | {metric: value}, ALL, None)
    assert not rep.passed
    assert [g.name for g in rep.failed] == [gate]
    assert "fails" in rep.failed[0].reason


def test_thresholds_are_inclusive() -> None:
    edge = {"sharpe": 0.5, "max_drawdown": 0.2, "hit_rate": 0.5, "ic": 0.02}
    assert evaluate_gates(edge, ALL, None).passed


def test_none_thresholds_are_not_checked() -> None:
    spec = GatesSpec(
        min_sharpe=None, max_drawdown=None, min_hit_rate=None, min_ic=None, champion=None
    )
    rep = evaluate_gates({}, spec, {"sharpe": 9.0})
    assert rep.passed and rep.gates == ()
    assert rep.skipped == (
        "min_sharpe",
        "max_drawdown",
        "min_hit_rate",
        "min_ic",
        "min_deflated_sharpe",
        "max_pbo",
        "max_segment_drawdown",
        "champion",
    )


def test_selection_and_segment_gates_refuse() -> None:
    spec = GatesSpec(
        min_sharpe=None,
        max_drawdown=None,
        min_deflated_sharpe=0.95,
        max_pbo=0.5,
        max_segment_drawdown=0.2,
        champion=None,
    )
    good = {"deflated_sharpe": 0.97, "pbo": 0.1, "max_segment_drawdown": 0.1}
    assert evaluate_gates(good, spec).passed
    bad = evaluate_gates({"deflated_sharpe": 0.6, "pbo": 0.7, "max_segment_drawdown": 0.3}, spec)
    assert [g.name for g in bad.failed] == [
        "min_deflated_sharpe",
        "max_pbo",
        "max_segment_drawdown",
    ]
    assert "pbo 0.7 fails <= 0.5" in by_name(bad, "max_pbo").reason
    # no PBO (no tuning) fails its gate rather than passing by default
    assert not by_name(evaluate_gates({"deflated_sharpe": 0.97}, spec), "max_pbo").passed


def test_no_champion_passes_with_a_reason() -> None:
    gate = by_name(evaluate_gates(GOOD, ALL, None), "champion_sharpe")
    assert gate.passed and gate.reason == "no champion"


def test_challenger_must_beat_champion_by_the_margin() -> None:
    assert not evaluate_gates(GOOD, ALL, {"sharpe": 1.15}).passed  # 1.2 < 1.15 + 0.1
    assert evaluate_gates(GOOD, ALL, {"sharpe": 1.1}).passed  # 1.2 >= 1.1 + 0.1
    spec = ALL.model_copy(update={"champion": ChampionGate(metric="ic", margin=0.0)})
    assert evaluate_gates(GOOD, spec, {"ic": 0.04}).passed  # a tie is "at least" the margin
    assert not evaluate_gates(GOOD, spec, {"ic": 0.05}).passed


def test_champion_on_another_window_or_without_the_metric_fails() -> None:
    other = evaluate_gates(GOOD, ALL, {"sharpe": 0.1, "n_bars": 400.0})
    assert [g.name for g in other.failed] == ["champion_sharpe"]
    assert "not the same window" in other.failed[0].reason
    missing = evaluate_gates(GOOD, ALL, {"ic": 0.01})
    assert "champion's sharpe is missing" in missing.failed[0].reason


def test_missing_or_nan_metrics_fail() -> None:
    rep = evaluate_gates({"sharpe": float("nan"), "max_drawdown": 0.1}, ALL, None)
    assert {g.name for g in rep.failed} == {"min_sharpe", "min_hit_rate", "min_ic"}
    assert by_name(rep, "min_sharpe").value is None
    assert "missing or not finite" in by_name(rep, "min_ic").reason


def test_report_to_dict_is_json() -> None:
    rep = evaluate_gates(GOOD | {"sharpe": 0.1}, ALL, {"sharpe": 1.0})
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["passed"] is False
    assert doc["failed"] == ["min_sharpe", "champion_sharpe"]
    assert doc["gates"][0] == {
        "name": "min_sharpe",
        "value": 0.1,
        "threshold": 0.5,
        "op": ">=",
        "passed": False,
        "reason": "sharpe 0.1 fails >= 0.5",
    }
