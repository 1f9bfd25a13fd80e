"""The monitoring report: drift, live performance, alerts and the experiment, in one document.

`monitor_report` assembles a JSON-ready dict (what `tradeloop monitor report --json` prints and
the console shows); `report_html.to_html` renders it as one page. `alert_values` turns the same
inputs into the metric values the alert rules are evaluated on, so the report and the alerts
always agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tradeloop.clock import utc
from tradeloop.errors import BadInput
from tradeloop.monitoring.performance import PerformanceMetrics
from tradeloop.monitoring.report_html import to_html
from tradeloop.spec import DriftSpec
from tradeloop.store import Store
from tradeloop.store.alerts import AlertRecord, open_alerts, recent_alerts

__all__ = ["alert_values", "current_performance", "monitor_report", "to_html"]

PREDICTION_COLUMN = "prediction"


def _drift_dict(drift: Any) -> dict[str, Any] | None:
    if drift is None:
        return None
    return dict(drift) if isinstance(drift, Mapping) else drift.to_dict()


def current_performance(
    performance: Sequence[PerformanceMetrics], variant: str = "champion"
) -> PerformanceMetrics | None:
    """The variant's version graded most recently (the one serving now), None if none is."""
    graded = [m for m in performance if m.variant == variant and m.n > 0]
    if not graded:
        return None
    return max(graded, key=lambda m: (m.window_end, m.n))  # graded: window_end is set


def alert_values(
    *,
    drift: Any = None,
    performance: Sequence[PerformanceMetrics] = (),
    variant: str = "champion",
    extra: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """Current values of the spec's alert metrics (`AlertEngine.evaluate` takes this).

    drift_share: share of drifted features; feature_drift: feature -> 1.0 if its test says
    drifted else 0.0 (the drift spec's method and threshold decide; the alert decides how long
    and how loud); prediction_drift: the same for the `prediction` column when the drift report
    tested it. hit_rate, sharpe, ic: the `variant`'s current version. latency_p99_ms and
    error_rate come from the gateway (`monitoring.slo`): pass them in `extra`. Unknown is None.
    """
    d = _drift_dict(drift)
    values: dict[str, Any] = {
        "drift_share": None,
        "feature_drift": {},
        "prediction_drift": None,
        "hit_rate": None,
        "sharpe": None,
        "ic": None,
        "latency_p99_ms": None,
        "error_rate": None,
        "out_of_range_share": None,
    }
    if d is not None and "columns" in d:
        cols = d["columns"]
        features = {k: v for k, v in cols.items() if k != PREDICTION_COLUMN}
        values["feature_drift"] = {k: 1.0 if v["drifted"] else 0.0 for k, v in features.items()}
        if features:
            values["drift_share"] = sum(v["drifted"] for v in features.values()) / len(features)
        if PREDICTION_COLUMN in cols:
            values["prediction_drift"] = 1.0 if cols[PREDICTION_COLUMN]["drifted"] else 0.0
    cur = current_performance(performance, variant)
    if cur is not None:
        values.update(hit_rate=cur.hit_rate, sharpe=cur.sharpe, ic=cur.ic)
    for k, v in (extra or {}).items():
        values[k] = v
    return values


def monitor_report(
    *,
    model: str,
    as_of: datetime,
    performance: Sequence[PerformanceMetrics] = (),
    drift: Any = None,
    reference: Any = None,
    current: Any = None,
    drift_spec: DriftSpec | None = None,
    store: Store | None = None,
    alert_labels: Mapping[str, str] | None = None,
    recent: int = 20,
    experiment: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the report.

    drift: a precomputed `DriftReport` (or its dict); else, given `reference` and `current`,
        `drift.drift_report(reference, current, drift_spec)` runs here (a BadInput becomes the
        section's `error`, so one bad table does not hide the rest of the report).
    store / alert_labels: where to read open and recent alerts (`AlertEngine.labels` scope).
    experiment: the rollout's verdict (`experiment.Verdict` or its `to_dict()`), if any.
    extra: more figures to show verbatim (e.g. gateway latency and error rate).
    """
    drift_section: dict[str, Any] | None = _drift_dict(drift)
    if drift_section is None and reference is not None and current is not None:
        from tradeloop.monitoring.drift import drift_report

        try:
            drift_section = drift_report(reference, current, drift_spec).to_dict()
        except BadInput as exc:
            drift_section = {"error": str(exc)}

    open_rows: list[AlertRecord] = []
    recent_rows: list[AlertRecord] = []
    if store is not None:
        recent_rows = recent_alerts(store, limit=recent, labels=alert_labels)
        open_rows = open_alerts(store, labels=alert_labels)

    exp: dict[str, Any] | None = None
    if experiment is not None:
        exp = dict(experiment) if isinstance(experiment, Mapping) else experiment.to_dict()

    values = alert_values(
        drift=drift_section if drift_section and "columns" in drift_section else None,
        performance=performance,
    )
    firing = sorted(r.rule for r in open_rows if r.state == "firing")
    severities = {r.labels.get("severity", "warning") for r in open_rows if r.state == "firing"}
    status = "critical" if "critical" in severities else ("warning" if firing else "ok")
    report: dict[str, Any] = {
        "model": model,
        "generated_at": utc(as_of).isoformat(),
        "summary": {
            "status": status,
            "firing": firing,
            "pending": sorted(r.rule for r in open_rows if r.state == "pending"),
            "dataset_drift": (drift_section or {}).get("dataset_drift"),
            "drift_share": values["drift_share"],
            "champion": _brief(current_performance(performance, "champion")),
            "challenger": _brief(current_performance(performance, "challenger")),
            "experiment": exp.get("decision") if exp else None,
        },
        "drift": drift_section,
        "performance": [m.to_dict() for m in performance],
        "alerts": {
            "open": [r.to_dict() for r in open_rows],
            "recent": [r.to_dict() for r in recent_rows],
        },
        "experiment": exp,
        "values": values,
        "extra": dict(extra or {}),
    }
    safe: dict[str, Any] = _json_safe(report)
    return safe


def _brief(m: PerformanceMetrics | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "version": m.model_version,
        "n": m.n,
        "hit_rate": m.hit_rate,
        "ic": m.ic,
        "sharpe": m.sharpe,
    }


def _json_safe(x: Any) -> Any:
    """NaN/inf become None and datetimes ISO strings, so `json.dumps(strict)` always works."""
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, datetime):
        return utc(x).isoformat()
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _json_safe(x.item())
    return x
