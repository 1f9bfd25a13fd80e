"""Prometheus rules and Grafana dashboards stay valid and refer only to metrics we export.

promtool (Debian's `prometheus` package) checks the rules, runs their unit tests, and parses
every dashboard query; without it these tests skip locally and fail in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tradeloop.monitoring.gauges import METRIC_NAMES, MonitorGauges
from tradeloop.monitoring.routes import Notifier

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
# Grafana's macros and variables, as Prometheus would see them after Grafana substitutes them.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$pipeline": ".*"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the promtool tests: apt-get install prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus); CI runs these")
    return path


def run(*args: str, cwd: Path = PROM) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def rules() -> list[dict[str, str]]:
    doc = yaml.safe_load((PROM / "rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def metric_names(expr: str) -> set[str]:
    """tradeloop metric names an expression reads (quoted label values ignored)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\btradeloop[a-zA-Z0-9_:]*", bare))


def panels() -> list[tuple[str, dict]]:
    out = []
    for path in DASHBOARDS:
        for p in json.loads(path.read_text())["panels"]:
            out.append((path.name, p))
            out += [(path.name, q) for q in p.get("panels", [])]
    return out


def test_gauge_names_constant_matches_the_registry() -> None:
    reg = CollectorRegistry()
    MonitorGauges(reg).watch_notifier(Notifier({}))
    got = set()
    for fam in reg.collect():
        got |= {fam.name + s for s in SUFFIXES[fam.type] if s != "_created"}
    assert got == set(METRIC_NAMES)


def test_every_panel_queries_a_tradeloop_metric() -> None:
    """Which of these series exist is checked against a running process, not a registry built
    here: tests/control/test_live_metrics.py scrapes `tradeloop up`'s /metrics."""
    for r in rules():
        assert metric_names(r["expr"]), f"rules.yml {r.get('alert') or r.get('record')}"
    assert len(DASHBOARDS) >= 3
    used: set[str] = set()
    for name, p in panels():
        if p["type"] == "row":
            continue
        assert p.get("targets"), f"{name}: panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t["expr"].strip(), f"{name}: panel {p['title']!r} has an empty query"
            found = metric_names(t["expr"])
            assert found, f"{name}: {p['title']!r} queries no tradeloop metric: {t['expr']}"
            used |= found
    # Each area the dashboards promise is there.
    for must in (
        "tradeloop_request_duration_seconds_bucket",
        "tradeloop_requests_total",
        "tradeloop_drift_share",
        "tradeloop_perf_hit_rate",
        "tradeloop_alert_firing",
        "tradeloop_controller_runs_total",
    ):
        assert must in used


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        assert doc["uid"] not in uids
        uids.add(doc["uid"])
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        names = [v["name"] for v in doc["templating"]["list"]]
        assert names == ["datasource", "pipeline"]  # pipeline: the `model` label
        for p in doc["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, f"{path.name}: {p['title']!r}"


def test_promtool_checks_the_rules_and_config() -> None:
    res = run("check", "rules", "rules.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    res = run("check", "config", "prometheus.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_of_the_rules() -> None:
    res = run("test", "rules", "rules_test.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables substituted, as a recording rule: promtool
    parses it as Prometheus would."""
    exprs = []
    for _, p in panels():
        for t in p.get("targets", []):
            e = t["expr"]
            for k, v in GRAFANA_VARS.items():
                e = e.replace(k, v)
            assert "$" not in e, f"unsubstituted variable in {t['expr']}"
            exprs.append(e)
    doc = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [{"record": f"dash:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(doc))
    res = run("check", "rules", "queries.yml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
