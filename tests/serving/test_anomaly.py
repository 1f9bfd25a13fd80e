"""Input anomalies: rows beyond the model's reference profile are flagged in the prediction
log and counted in /metrics; `refuse_beyond` answers 422 naming the row and the feature."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pytest

from tradeloop.serving.anomaly import FeatureBounds
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import ServingSpec

PROFILE = {
    "format": "tradeloop.drift_profile",
    "columns": {
        "ret_1": {"type": "numeric", "min": -0.05, "max": 0.05, "std": 0.01},
        "ret_5": {"type": "numeric", "min": -0.1, "max": 0.1, "std": 0.02},
        "vol_20": {"type": "numeric", "min": 0.0, "max": 0.05, "std": 0.005},
    },
}


@pytest.fixture
def profiled(models: DirectorySource) -> DirectorySource:
    (models.root / "demo" / "1" / "reference_profile.json").write_text(json.dumps(PROFILE))
    return models


def _flags(state: Path) -> list[tuple[str, bool]]:
    glob = state / "predictions" / "**" / "*.parquet"
    return duckdb.sql(
        f"select request_id, out_of_range from read_parquet('{glob}', hive_partitioning=true)"
        " order by request_id, row"
    ).fetchall()


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_absurd_value_is_flagged_and_counted(
    profiled: DirectorySource,
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    tmp_path: Path,
) -> None:
    deployer(("champion", "1", "live", 100))
    app = make_app()
    url = live(app).url
    ok = httpx.post(
        f"{url}/invocations",
        json={"inputs": [[0.01, 0.02, 0.01]]},
        headers={"x-request-id": "a-normal"},
    )
    bad = httpx.post(
        f"{url}/invocations",
        json={"inputs": [[0.01, 0.02, 0.01], [1e9, 0.0, 0.01]]},
        headers={"x-request-id": "b-absurd"},
    )
    assert ok.status_code == 200 and bad.status_code == 200  # flagged, still scored
    app.state.gateway.predlog.flush(timeout=10)
    assert _flags(tmp_path / "state") == [
        ("a-normal", False),
        ("b-absurd", False),
        ("b-absurd", True),
    ]
    assert _metric(url, "tradeloop_input_rows_total") == 3
    assert _metric(url, "tradeloop_input_out_of_range_total") == 1


def test_refuse_beyond_answers_422_naming_the_feature(
    profiled: DirectorySource,
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec(refuse_beyond=10))).url
    near = httpx.post(f"{url}/invocations", json={"inputs": [[0.06, 0.0, 0.01]]})  # 1 std out
    assert near.status_code == 200
    r = httpx.post(f"{url}/invocations", json={"inputs": [[0.0, 0.0, 0.01], [1e9, 0.0, 5500]]})
    assert r.status_code == 422
    text = r.text
    assert "row 1 ret_1" in text and "row 1 vol_20" in text and "10 reference std" in text
    assert _metric(url, "tradeloop_input_out_of_range_total") == 2  # refused rows counted


def test_a_model_without_a_profile_is_served_unchecked(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app(serving=ServingSpec(refuse_beyond=1))).url
    assert httpx.post(f"{url}/invocations", json={"inputs": [[1e9, 0.0, 0.0]]}).status_code == 200
    assert _metric(url, "tradeloop_input_rows_total") == 0  # the series exists, at 0
    assert "tradeloop_input_rows_total{" in httpx.get(f"{url}/metrics").text


def test_bounds_distance() -> None:
    b = FeatureBounds.from_profile(PROFILE, ["ret_1", "unknown", "vol_20"])
    assert b is not None
    x = np.array([[0.07, 1e6, np.nan], [0.0, 0.0, -0.01]], dtype=np.float32)
    d = b.distance(x)
    assert d[0, 0] == pytest.approx(2.0, rel=1e-3)  # 0.02 past max, std 0.01
    assert d[0, 1] == 0 and d[0, 2] == 0  # unknown feature unbounded; NaN is missing
    assert d[1, 2] == pytest.approx(2.0, rel=1e-3)
    assert FeatureBounds.from_profile(None, ["ret_1"]) is None


def test_outside_flags_exactly_the_rows_distance_puts_beyond_the_range() -> None:
    """The request path's quick check agrees with `distance` row for row: NaN is no
    anomaly, a value on a bound is inside, and all-inside answers None."""
    b = FeatureBounds.from_profile(PROFILE, ["ret_1", "ret_5", "vol_20"])
    assert b is not None
    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.04, size=(500, 3)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[3] = b.hi  # on the bounds
    x[4] = b.lo
    flags = b.outside(x)
    assert flags is not None and flags.dtype == bool and flags.shape == (500,)
    assert flags.tolist() == (b.distance(x).max(axis=1) > 0).tolist()
    assert not flags[3] and not flags[4]
    inside = np.clip(x, b.lo, b.hi)
    assert b.outside(inside) is None
    assert b.outside(np.full((2, 3), np.nan, np.float32)) is None
