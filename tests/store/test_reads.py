"""The DB-API reads `tradeloop status` uses give what the SQLAlchemy code gives, on SQLite and
PostgreSQL, through both ways of connecting (the driver directly, and an engine's pool)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tradeloop.clock import SimulatedClock, utc
from tradeloop.store import Store, leases, reads
from tradeloop.store import alerts as store_alerts
from tradeloop.store import deployments as dep
from tradeloop.store.alerts import AlertRecord
from tradeloop.store.tables import controller_runs


def _populate(store: Store, clock: SimulatedClock) -> None:
    dep.apply(
        store,
        "m",
        [
            dep.Deployed("m", "champion", "1", "live", 90),
            dep.Deployed("m", "challenger", "2", "live", 10),
        ],
        actor="test",
        reason="canary",
    )
    dep.apply(
        store, "other", [dep.Deployed("other", "champion", "7", "live", 100)], actor="t", reason="r"
    )
    now = clock.now()
    with store.begin() as c:
        for rule, state, labels in (
            ("drift", "firing", {"model": "m"}),
            ("latency", "pending", {"model": "m", "variant": "challenger"}),
            ("old", "resolved", {"model": "m"}),
            ("elsewhere", "firing", {"model": "other"}),
        ):
            store_alerts.insert_alert(
                c,
                AlertRecord(
                    0,
                    rule,
                    rule * 3,
                    state,
                    0.5,
                    now,
                    now if state == "firing" else None,
                    None,
                    now,
                    labels,
                ),  # type: ignore[arg-type]
            )
        for name, outcome in (("trainer", "ok"), ("trainer", "error"), ("deployer", "ok")):
            clock.advance(timedelta(seconds=5))
            c.execute(
                controller_runs.insert().values(
                    controller=name,
                    started_at=clock.now(),
                    duration_s=0.25,
                    outcome=outcome,
                    message=f"{name} {outcome}",
                )
            )
    assert leases.acquire(store, "controller:deployer", "host:1", timedelta(seconds=30))


def test_reads_equal_the_sqlalchemy_answers(db_url: str, clock: SimulatedClock) -> None:
    store = Store.open(db_url, clock)
    try:
        _populate(store, clock)
        direct = reads.current_or_none(db_url)
        assert direct is not None  # the database exists at the expected revision
        with direct as a, reads.of_store(store) as b:
            for db in (a, b):
                assert reads.deployments(db, "m") == [d.to_dict() for d in dep.current(store, "m")]
                assert reads.open_alerts(db, {"model": "m"}) == [
                    r.to_dict() for r in store_alerts.open_alerts(store, labels={"model": "m"})
                ]
                assert [x["rule"] for x in reads.open_alerts(db, {"model": "m"})] == [
                    "drift",
                    "latency",
                ]
                status = reads.controller_status(db, utc(clock.now()))
                assert [(s["controller"], s["outcome"], s["holder"]) for s in status] == [
                    ("deployer", "ok", "host:1"),
                    ("trainer", "error", None),
                ]
                assert status[1]["last_success_at"] < status[1]["last_run_at"]
                assert reads.latest_rollout(db, "m") is None and reads.last_trigger(db, "m") is None
            assert reads.controller_status(a, utc(clock.now())) == reads.controller_status(
                b, utc(clock.now())
            )
    finally:
        store.close()


def test_a_missing_or_behind_database_reads_as_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    assert reads.current_or_none(url) is None
    assert not (tmp_path / "nothing.db").exists()  # reading never creates a store
    import sqlite3

    sqlite3.connect(tmp_path / "old.db").executescript(
        "CREATE TABLE tradeloop_alembic_version (version_num TEXT); "
        "INSERT INTO tradeloop_alembic_version VALUES ('0000');"
    )
    assert reads.current_or_none(f"sqlite:///{tmp_path / 'old.db'}") is None
    assert reads.current_or_none("mysql://nowhere/db") is None  # no DB-API reader: SQLAlchemy
