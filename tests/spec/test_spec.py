from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tradeloop.errors import SpecError
from tradeloop.spec import (
    AlertRule,
    FeatureSpec,
    Spec,
    check_alert_rules,
    check_features,
    check_threshold_order,
    check_thresholds,
    load_spec,
    parse_duration,
    parse_spec,
)
from tradeloop.templates import example_spec


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return info.value.problems


def test_example_spec_is_valid_and_round_trips() -> None:
    spec = parse_spec(example_spec("x"))
    assert spec.name == "x" and spec.model.type == "lightgbm"
    assert spec.data.simulator.regimes[1].at == 3000
    again = Spec.model_validate(spec.model_dump(by_alias=True))
    assert again.spec_hash() == spec.spec_hash()


def test_misspelt_key_names_line_path_and_suggestion() -> None:
    text = "name: demo\nmodel:\n  type: lightgbm\n  n_estimatorz: 10\n"
    assert _problems(text) == [
        "tradeloop.yaml:4: model.n_estimatorz: unknown key (did you mean n_estimators?)"
    ]


def test_unknown_key_inside_a_list_item() -> None:
    text = "name: demo\nfeatures:\n  - name: a\n    kind: returns\n    windw: 3\n"
    (p,) = _problems(text)
    assert p.startswith("tradeloop.yaml:5: features[0].windw: unknown key (did you mean window?)")


def test_unknown_top_level_section() -> None:
    (p,) = _problems("name: demo\nmonitorin: {}\n")
    assert p == "tradeloop.yaml:2: monitorin: unknown key (did you mean monitoring?)"


def test_bad_values_are_located() -> None:
    problems = _problems("name: demo\ndata:\n  frequency: soon\nlabels:\n  horizon: 0\n")
    assert problems[0].startswith("tradeloop.yaml:3: data.frequency: not a duration")
    assert problems[1].startswith("tradeloop.yaml:5: labels.horizon:")


def test_discriminated_model_type_uses_the_right_fields() -> None:
    (p,) = _problems("name: demo\nmodel:\n  type: linear\n  n_estimators: 5\n")
    assert "model.n_estimators: unknown key" in p and "alpha" in p


def test_cross_references_are_checked() -> None:
    (p,) = _problems("name: demo\nretraining:\n  on: [nope]\n")
    assert "unknown alert 'nope'" in p
    (p,) = _problems("name: demo\nfeatures:\n  - {name: r, kind: cs_rank, of: missing}\n")
    assert "'of' must name another feature" in p


def test_yaml_on_key_is_a_string_not_true() -> None:
    spec = parse_spec(
        "name: demo\nmonitoring:\n  alerts:\n    - {name: d, metric: drift_share, value: 0.5}\n"
        "retraining:\n  on: [d]\n"
    )
    assert spec.retraining.on == ["d"]


def test_invalid_yaml_gives_line() -> None:
    (p,) = _problems("name: demo\nmodel: [unclosed\n")
    assert p.startswith("tradeloop.yaml:") and "invalid YAML" in p


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("a while")


def test_spec_hash_ignores_layout_but_not_content() -> None:
    a = parse_spec("name: demo\nlabels: {horizon: 2}\n")
    b = parse_spec("# comment\nlabels:\n  horizon: 2\nname: demo\n")
    c = parse_spec("name: demo\nlabels: {horizon: 3}\n")
    assert a.spec_hash() == b.spec_hash() != c.spec_hash()


def test_load_spec_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no spec file"):
        load_spec(tmp_path)


def test_files_need_a_mapping() -> None:
    (p,) = _problems("name: demo\ndata:\n  source: csv\n")
    assert "needs 'path' and 'columns'" in p


def test_thresholds_must_fit_the_task() -> None:
    (p,) = _problems("name: demo\nmodel: {type: linear, task: regression}\n")
    assert "regression model" in p
    spec = parse_spec(
        "name: demo\nmodel: {type: linear, task: regression}\n"
        "backtest: {long_threshold: 0.001, short_threshold: -0.001}\n"
    )
    assert spec.model.task == "regression"


def test_std_features_need_two_bars() -> None:
    (p,) = _problems("name: demo\nfeatures:\n  - {name: v, kind: volatility, window: 1}\n")
    assert "window >= 2" in p


def test_feature_names_must_not_be_key_columns() -> None:
    (p,) = _problems("name: demo\nfeatures:\n  - {name: symbol, kind: range}\n")
    assert p == "tradeloop.yaml:3: features[0]: the name is reserved for the key column"


def test_each_rule_is_one_function_runtime_code_can_call() -> None:
    """The rules the spec applies at load time, called on values built in code."""
    with pytest.raises(
        ValueError, match=r"^backtest thresholds 0.001/-0.001 are not probabilities"
    ):
        check_thresholds(0.001, -0.001, "classification")
    check_thresholds(0.001, -0.001, "regression")
    with pytest.raises(ValueError, match=r"^short_threshold must be <= long_threshold$"):
        check_threshold_order(0.4, 0.6)
    rules = [AlertRule(name="d", metric="feature_drift", value=0.1, routes=["hook"])]
    with pytest.raises(ValueError, match=r"^alert 'd' routes to unknown webhook 'hook'$"):
        check_alert_rules(rules, {})
    with pytest.raises(ValueError, match=r"^alert 'd': feature_drift needs 'feature'$"):
        check_alert_rules(rules, {"hook"})
    unchecked = [FeatureSpec.model_construct(name="z", kind="zscore", window=1)]
    with pytest.raises(ValueError, match=r"^feature 'z': zscore needs window >= 2 \(a standard"):
        check_features(unchecked)


def test_an_alert_on_a_metric_nothing_produces_is_refused() -> None:
    (p,) = _problems(
        "name: demo\nmonitoring:\n  alerts:\n    - {name: d, metric: log_dropped, value: 1}\n"
    )
    assert "tradeloop.yaml:4" in p and "'log_dropped' is produced by nothing" in p
    assert "tradeloop_predlog_dropped_total" in p
    (p,) = _problems("name: demo\nmonitoring:\n  alerts:\n    - {name: d, metric: p50, value: 1}\n")
    assert "latency_p99_ms" in p  # the metrics that exist are named


def test_monitoring_interval_and_slo_window() -> None:
    spec = parse_spec("name: demo\nmonitoring:\n  interval: 5m\n  slos: {window: 10m, for: 1m}\n")
    assert spec.monitoring.interval == timedelta(minutes=5)
    assert spec.monitoring.slos.window == timedelta(minutes=10)
    assert spec.monitoring.slos.for_ == timedelta(minutes=1)
    assert parse_spec("name: demo\n").monitoring.interval == timedelta(hours=1)
    (p,) = _problems("name: demo\nmonitoring:\n  interval: 0s\n")
    assert "interval must be positive" in p


def test_pbo_gate_needs_tuning_trials() -> None:
    (p,) = _problems("name: demo\ngates: {max_pbo: 0.5}\n")
    assert "gates.max_pbo needs training.tuning.trials >= 2" in p
    spec = parse_spec(
        "name: demo\ngates: {max_pbo: 0.5, min_deflated_sharpe: 0.9, max_segment_drawdown: 0.3}\n"
        "training: {tuning: {trials: 4}}\n"
    )
    assert (spec.gates.max_pbo, spec.gates.min_deflated_sharpe) == (0.5, 0.9)
    (p,) = _problems("name: demo\ngates: {min_deflated_sharpe: 1.5}\n")
    assert "min_deflated_sharpe" in p
