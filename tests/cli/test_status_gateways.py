"""`tradeloop status` shows what each gateway reports actually answers, not only intent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.cli.conftest import Run
from tradeloop.clock import SimulatedClock
from tradeloop.store import Store
from tradeloop.store.gateway_reports import record_serving


def test_status_lists_what_each_gateway_serves(run: Run, project: Path) -> None:
    assert run("status", cwd=project).code == 0  # creates the store
    name = run("validate", "--json", cwd=project).json()["name"]
    store = Store.open(
        f"sqlite:///{project / '.tradeloop' / 'tradeloop.db'}",
        SimulatedClock(datetime(2024, 3, 1, tzinfo=UTC)),
    )
    variant = {"variant": "champion", "mode": "live", "weight": 100, "error": "sha256 mismatch"}
    report = {"model": name, "ready": False, "degraded": True, "state": "degraded"}
    record_serving(
        store,
        "gw-a",
        {
            **report,
            "variants": [
                {
                    **variant,
                    "deployed_version": "2",
                    "serving_version": "1",
                    "loaded": False,
                    "last_good": True,
                }
            ],
        },
    )
    record_serving(store, "gw-b", {**report, "model": "another-model", "variants": []})
    store.close()
    r = run("status", "--json", cwd=project)
    assert r.code == 0, r.err
    doc = r.json()
    (gw,) = doc["actual"]["gateways"]  # only this pipeline's gateways
    assert gw["gateway"] == "gw-a" and gw["variants"][0]["serving_version"] == "1"
    assert doc["in_sync"] is False  # an older version answers than the one deployed
    text = run("status", cwd=project)
    assert "gateway gw-a degraded: champion v1 (deployed v2)" in text.out
