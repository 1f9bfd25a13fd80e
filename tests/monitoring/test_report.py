"""Gauges and the monitoring report, built from real drift, performance and alert state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tradeloop.clock import SimulatedClock
from tradeloop.monitoring.alerts import AlertEngine
from tradeloop.monitoring.drift import drift_report
from tradeloop.monitoring.experiment import analyze
from tradeloop.monitoring.gauges import METRIC_NAMES, MonitorGauges
from tradeloop.monitoring.performance import PerformanceConfig, live_performance
from tradeloop.monitoring.report import alert_values, monitor_report, to_html
from tradeloop.monitoring.routes import Notifier
from tradeloop.spec import AlertRule, AnalysisSpec, DriftSpec, WebhookRoute
from tradeloop.store import Store

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
TS = pl.Datetime("us", "UTC")


@pytest.fixture
def lite(sqlite_url: str, clock: SimulatedClock) -> Iterator[Store]:
    s = Store.open(sqlite_url, clock)
    yield s
    s.close()


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def tables(shift: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(1)
    ref = pl.DataFrame({"ret_1": rng.normal(0, 1, 2000), "vol_20": rng.normal(0, 1, 2000)})
    cur = pl.DataFrame(
        {
            "ret_1": rng.normal(shift, 1, 1000),
            "vol_20": rng.normal(0, 1, 1000),
            "prediction": rng.uniform(size=1000),
        }
    )
    return ref, cur


def performance() -> list:
    rng = np.random.default_rng(2)
    n = 120
    closes = 100 * np.cumprod(np.concatenate(([1.0], 1 + rng.normal(0, 0.01, n))))
    bars = pl.DataFrame(
        {"timestamp": [T0 + i * H for i in range(n + 1)], "symbol": "AAA", "close": closes},
        schema_overrides={"timestamp": TS},
    )
    preds = pl.DataFrame(
        {
            "timestamp": [T0 + i * H for i in range(n)] * 2,
            "symbol": "AAA",
            "variant": ["champion"] * n + ["challenger"] * n,
            "model_version": ["1"] * n + ["2"] * n,
            "prediction": rng.uniform(size=2 * n),
        },
        schema_overrides={"timestamp": TS},
    )
    return live_performance(preds, bars, as_of=T0 + 200 * H, config=PerformanceConfig(window=100))


def test_gauges_export_drift_performance_alerts_and_remove_stale_series(
    lite: Store, clock: SimulatedClock
) -> None:
    reg = CollectorRegistry()
    g = MonitorGauges(reg, model="demo")
    ref, cur = tables(shift=2.0)
    report = drift_report(ref, cur.drop("prediction"), DriftSpec(method="ks"))
    g.set_drift(report)
    perf = performance()
    g.set_performance(perf)
    rules = [
        AlertRule(name="drift", metric="drift_share", op=">=", value=0.5),
        AlertRule(name="decay", metric="hit_rate", op="<", value=0.0),
    ]
    eng = AlertEngine(lite, clock, rules, labels={"model": "demo"})
    eng.evaluate(alert_values(drift=report, performance=perf))
    g.set_alerts(rules, eng.open_alerts())
    hooks = {"hook": WebhookRoute(url="http://127.0.0.1:9/")}
    g.watch_notifier(Notifier(hooks))
    g.mark_evaluated(clock.now())

    s = samples(reg)
    ch = ("variant", "champion")
    assert s[("tradeloop_drift_detected", (("feature", "ret_1"), ("model", "demo"), ch))] == 1.0
    assert s[("tradeloop_drift_detected", (("feature", "vol_20"), ("model", "demo"), ch))] == 0.0
    assert s[("tradeloop_drift_share", (("model", "demo"), ch))] == 0.5
    stat = (
        "tradeloop_drift_statistic",
        (("feature", "ret_1"), ("method", "ks"), ("model", "demo"), ch),
    )
    assert s[stat] == pytest.approx(report.column("ret_1").statistic)
    champ = (("model", "demo"), ("variant", "champion"), ("version", "1"))
    assert s[("tradeloop_perf_graded", champ)] == 100
    assert s[("tradeloop_perf_hit_rate", champ)] == pytest.approx(perf[1].hit_rate)
    assert (
        s[
            (
                "tradeloop_alert_firing",
                (("model", "demo"), ("rule", "drift"), ("severity", "warning")),
            )
        ]
        == 1
    )
    assert (
        s[
            (
                "tradeloop_alert_firing",
                (("model", "demo"), ("rule", "decay"), ("severity", "warning")),
            )
        ]
        == 0
    )
    assert s[("tradeloop_alert_notifications_total", (("result", "sent"), ("route", "hook")))] == 0
    assert s[("tradeloop_monitor_last_evaluation_timestamp_seconds", (("model", "demo"),))] == (
        clock.now().timestamp()
    )
    names = {n for n, _ in s}
    assert names <= set(METRIC_NAMES)

    # The challenger is gone (rollout over) and drift has no data: their series disappear.
    g.set_performance([m for m in perf if m.variant == "champion"])
    g.set_drift(None)
    s = samples(reg)
    assert not any(dict(lbl).get("variant") == "challenger" for _, lbl in s)
    assert not any(n.startswith("tradeloop_drift") for n, _ in s)
    eng.close()


def test_drift_series_are_per_variant_and_a_retired_variant_loses_its_own() -> None:
    reg = CollectorRegistry()
    g = MonitorGauges(reg, model="demo")
    ref, shifted = tables(shift=2.0)
    _, same = tables(shift=0.0)
    spec = DriftSpec(method="ks")
    champion = drift_report(ref, same.drop("prediction"), spec)
    challenger = drift_report(ref, shifted.drop("prediction"), spec)
    g.set_drift_by_variant({"champion": champion, "challenger": challenger})
    s = samples(reg)

    def share(variant: str) -> float | None:
        return s.get(("tradeloop_drift_share", (("model", "demo"), ("variant", variant))))

    assert share("champion") == champion.share < share("challenger") == challenger.share
    key = (("feature", "ret_1"), ("model", "demo"), ("variant", "challenger"))
    assert s[("tradeloop_drift_detected", key)] == 1.0
    assert s[("tradeloop_drift_detected", (*key[:2], ("variant", "champion")))] == 0.0
    g.set_drift_by_variant({"champion": champion})  # the rollout ended
    s = samples(reg)
    assert share("challenger") is None and share("champion") == champion.share
    assert not any(dict(lbl).get("variant") == "challenger" for _, lbl in s)


def test_alert_values_follow_the_drift_verdicts_and_the_current_champion() -> None:
    ref, cur = tables(shift=2.0)
    ref = ref.with_columns(pl.Series("prediction", np.random.default_rng(3).uniform(size=2000)))
    report = drift_report(ref, cur, DriftSpec(method="ks"))
    perf = performance()
    v = alert_values(drift=report, performance=perf, extra={"latency_p99_ms": 3.5})
    assert v["feature_drift"] == {"ret_1": 1.0, "vol_20": 0.0}
    assert v["drift_share"] == 0.5  # the prediction column is not a feature
    assert v["prediction_drift"] == 0.0
    champ = next(m for m in perf if m.variant == "champion")
    assert (v["hit_rate"], v["ic"], v["sharpe"]) == (champ.hit_rate, champ.ic, champ.sharpe)
    assert v["latency_p99_ms"] == 3.5 and v["error_rate"] is None
    empty = alert_values()
    assert empty["hit_rate"] is None and empty["drift_share"] is None


def test_report_json_and_html(lite: Store, clock: SimulatedClock) -> None:
    ref, cur = tables(shift=2.0)
    ref = ref.rename({"vol_20": "<b>vol</b>"})
    cur = cur.rename({"vol_20": "<b>vol</b>"}).drop("prediction")
    perf = performance()
    rules = [
        AlertRule(name="data_drift", metric="drift_share", op=">=", value=0.5, severity="critical"),
        AlertRule.model_validate(
            {"name": "decay", "metric": "hit_rate", "op": "<", "value": 0.99, "for": "1h"}
        ),
    ]
    eng = AlertEngine(lite, clock, rules, labels={"model": "demo"})
    drift = drift_report(ref, cur, DriftSpec(method="ks"))
    eng.evaluate(alert_values(drift=drift, performance=perf))
    rng = np.random.default_rng(0)
    verdict = analyze(rng.normal(0, 1, 300), rng.normal(0, 1, 300), AnalysisSpec(min_samples=50))

    report = monitor_report(
        model="demo",
        as_of=clock.now(),
        performance=perf,
        reference=ref,
        current=cur,
        drift_spec=DriftSpec(method="ks"),
        store=lite,
        alert_labels={"model": "demo"},
        experiment=verdict,
        extra={"latency_p99_ms": 2.5},
    )
    text = json.dumps(report, allow_nan=False)
    back = json.loads(text)
    s = back["summary"]
    assert s["status"] == "critical" and s["firing"] == ["data_drift"] and s["pending"] == ["decay"]
    assert s["dataset_drift"] is True and s["experiment"] == verdict.decision
    assert s["champion"]["version"] == "1" and s["challenger"]["version"] == "2"
    assert [a["rule"] for a in back["alerts"]["open"]] == ["data_drift", "decay"]
    assert len(back["performance"]) == 2 and back["drift"]["columns"]["ret_1"]["drifted"]

    page = to_html(report)
    assert page.startswith("<!doctype html>") and "</html>" in page
    assert "&lt;b&gt;vol&lt;/b&gt;" in page and "<b>vol</b>" not in page
    assert (
        "CRITICAL" in page
        and "data_drift" in page
        and "http" not in page.lower().replace("http-equiv", "")
    )  # self-contained: nothing fetched
    bad = monitor_report(
        model="demo", as_of=clock.now(), reference=ref, current=pl.DataFrame({"other": [1.0]})
    )
    assert "error" in bad["drift"] and "drift could not be computed" in to_html(bad)
    eng.close()


def test_a_fresh_process_has_delivery_and_performance_series_before_any_outcome(
    lite: Store, clock: SimulatedClock
) -> None:
    """`tradeloop up` on a new project routes alerts only to the log and has no graded
    outcome yet (they come a label horizon later); the rules' series must exist anyway."""
    reg = CollectorRegistry()
    g = MonitorGauges(reg, model="demo")
    rules = [AlertRule(name="drift", metric="drift_share", op=">=", value=0.5)]
    eng = AlertEngine(lite, clock, rules, labels={"model": "demo"})  # no webhooks: the log
    g.watch_notifier(eng.notifier)
    g.set_performance([], [("champion", "1")])
    s = samples(reg)
    sent = ("tradeloop_alert_notifications_total", (("result", "sent"), ("route", "log")))
    assert s[sent] == 0.0
    hit = (
        "tradeloop_perf_hit_rate",
        (("model", "demo"), ("variant", "champion"), ("version", "1")),
    )
    assert np.isnan(s[hit])  # "not known yet", which no comparison fires on

    eng.evaluate({"drift_share": 0.9})  # fires (no `for`): one line on the log route
    assert samples(reg)[sent] == 1.0
    g.set_performance(performance(), [("champion", "1")])  # graded now: real values replace NaN
    graded = [v for (n, _), v in samples(reg).items() if n == "tradeloop_perf_hit_rate"]
    assert graded and not any(np.isnan(v) for v in graded)
