"""Degraded mode with the store cut: verified tokens keep working, store errors are 503s.

The database is really cut: PostgreSQL's database is renamed away under the gateway, or the
SQLite file is overwritten with bytes that are not a database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tradeloop.clock import SimulatedClock
from tradeloop.security.tokens import create_token
from tradeloop.serving.server import build_app
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import ServingSpec
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, apply

FEATURES = ["ret_1", "ret_5", "vol_20"]
ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.01, 0.02, 0.015]]}}


@contextmanager
def cut_postgres(url: str, store: Store) -> Iterator[None]:
    """Rename the database away (ending its sessions), and back afterwards."""
    u = make_url(url)
    name = u.database
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def rename(old: str, new: str) -> None:
        for _ in range(50):  # the gateway may reconnect between the two statements
            with admin.connect() as c:
                c.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=:n"),
                    {"n": old},
                )
                try:
                    c.execute(text(f'ALTER DATABASE "{old}" RENAME TO "{new}"'))
                    return
                except Exception as exc:
                    if "being accessed" not in str(exc):
                        raise
        raise AssertionError(f"could not rename {old}")

    rename(name, name + "_cut")
    try:
        yield
    finally:
        rename(name + "_cut", name)
        admin.dispose()


@contextmanager
def cut_sqlite(url: str, store: Store) -> Iterator[None]:
    """Move the database (and its WAL files) away and drop pooled connections, as a restart
    of the disk or volume would; a new connection then finds an empty file."""
    path = Path(make_url(url).database or "")
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    store.engine.dispose()
    for f in files:
        if f.exists():
            f.rename(f.with_name(f.name + ".cut"))
    try:
        yield
    finally:
        store.engine.dispose()
        for f in files:
            f.unlink(missing_ok=True)
            away = f.with_name(f.name + ".cut")
            if away.exists():
                away.rename(f)


@pytest.fixture
def gateway(
    db_url: str, tmp_path: Path, live: Any, onnx_linear: Callable[..., bytes]
) -> Iterator[tuple[str, Store, dict[str, str]]]:
    clock = SimulatedClock(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    store = Store.open(db_url, clock)
    source = DirectorySource(tmp_path / "models")
    source.put("demo", "1", onnx_linear([1.0, 0.5, -0.25]), FEATURES)
    apply(store, "demo", [Deployed("demo", "champion", "1", "live", 100)], actor="t", reason="t")
    tokens = {role: create_token(store, role, role)[0] for role in ("predictor", "operator")}
    app = build_app(
        store,
        "demo",
        source,
        state_dir=tmp_path / "state",
        clock=clock,
        serving=ServingSpec(require_token=True),
        poll_interval=0.05,
        predlog_flush_interval=0.05,
        token_cache_ttl=0.0,  # every request asks the store, so the cut is met at once
    )
    yield live(app).url, store, tokens
    store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_authorized_predictions_keep_answering_while_the_store_is_cut(
    gateway: tuple[str, Store, dict[str, str]], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, store, tokens = gateway
    pred, op = bearer(tokens["predictor"]), bearer(tokens["operator"])
    assert httpx.post(url + "/invocations", json=ROW, headers=pred).status_code == 200
    assert httpx.post(url + "/admin/reload", headers=op).status_code == 200
    unseen = bearer(create_token(store, "late", "predictor")[0])
    cut = cut_postgres if db_url.startswith("postgresql") else cut_sqlite
    caplog.set_level(logging.ERROR)
    with cut(db_url, store):
        for _ in range(50):
            r = httpx.post(url + "/invocations", json=ROW, headers=pred)
            assert r.status_code == 200, r.text
        # a token never verified cannot be checked: 503 with the reason, not 500
        r = httpx.post(url + "/invocations", json=ROW, headers=unseen)
        assert r.status_code == 503 and "store is unreachable" in r.json()["message"]
        # the reload reads deployment state: 503 with a JSON reason
        r = httpx.post(url + "/admin/reload", headers=op)
        assert r.status_code == 503 and "store is unreachable" in r.json()["message"], r.text
        assert httpx.get(url + "/readyz").status_code == 200  # still serving what it had
    # the same failures were logged in full once each, not once per request
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert 1 <= len(tracebacks) <= 6, [rec.getMessage() for rec in tracebacks]
    counted = [
        line
        for line in httpx.get(url + "/metrics").text.splitlines()
        if line.startswith('tradeloop_gateway_errors_total{where="auth"}')
    ]
    assert counted and float(counted[0].split()[-1]) >= 50
    # back: the new token verifies, and the reload works again
    r = httpx.post(url + "/invocations", json=ROW, headers=unseen)
    assert r.status_code == 200, r.text
    assert httpx.post(url + "/admin/reload", headers=op).status_code == 200
