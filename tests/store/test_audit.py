from __future__ import annotations

import itertools
import threading
from datetime import timedelta

from sqlalchemy import text, update

from tradeloop.clock import SimulatedClock
from tradeloop.store import Store
from tradeloop.store.engine import SCHEMA_HEAD
from tradeloop.store.tables import audit_log


def _fill(store: Store, clock: SimulatedClock, n: int = 5) -> None:
    for i in range(n):
        clock.advance(timedelta(minutes=1))
        store.audit.append("tester", "thing.do", f"thing:{i}", {"i": i, "nested": {"x": [1, 2]}})


def test_chain_verifies_and_lists_in_order(store: Store, clock: SimulatedClock) -> None:
    _fill(store, clock)
    v = store.audit.verify()
    assert v.ok and v.entries == 5
    entries = store.audit.list()
    assert [e.subject for e in entries] == [f"thing:{i}" for i in range(5)]
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert entries[2].payload == {"i": 2, "nested": {"x": [1, 2]}}
    assert entries[1].ts - entries[0].ts == timedelta(minutes=1)


def test_edited_payload_is_named(store: Store, clock: SimulatedClock) -> None:
    _fill(store, clock)
    with store.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.id == 3).values(payload='{"i":99}'))
    v = store.audit.verify()
    assert not v.ok and v.first_bad_id == 3 and "edited" in v.problem


def test_edited_actor_or_time_is_caught(store: Store, clock: SimulatedClock) -> None:
    _fill(store, clock)
    with store.begin() as c:
        c.execute(update(audit_log).where(audit_log.c.id == 2).values(actor="mallory"))
    assert store.audit.verify().first_bad_id == 2


def test_deleted_middle_entry_is_caught(store: Store, clock: SimulatedClock) -> None:
    _fill(store, clock)
    with store.begin() as c:
        c.execute(audit_log.delete().where(audit_log.c.id == 2))
    v = store.audit.verify()
    assert not v.ok and v.first_bad_id == 2 and "missing" in v.problem


def test_deleted_newest_entry_is_caught(store: Store, clock: SimulatedClock) -> None:
    _fill(store, clock)
    with store.begin() as c:
        c.execute(audit_log.delete().where(audit_log.c.id == 5))
    v = store.audit.verify()
    assert not v.ok and v.first_bad_id == 5 and "deleted" in v.problem


def test_reordered_entries_are_caught(store: Store, clock: SimulatedClock) -> None:
    _fill(store, clock)
    # swap the contents of entries 2 and 3, keeping ids: the chain no longer links
    with store.begin() as c:
        rows = {r.id: r for r in c.execute(audit_log.select().where(audit_log.c.id.in_([2, 3])))}
        for a, b in ((2, 3), (3, 2)):
            r = rows[b]
            c.execute(
                update(audit_log)
                .where(audit_log.c.id == a)
                .values(
                    ts=r.ts,
                    actor=r.actor,
                    action=r.action,
                    subject=r.subject,
                    payload=r.payload,
                    prev_hash=r.prev_hash,
                    hash=r.hash,
                )
            )
    v = store.audit.verify()
    assert not v.ok and v.first_bad_id == 2


def test_audit_joins_the_callers_transaction(store: Store, clock: SimulatedClock) -> None:
    try:
        with store.begin() as c:
            store.audit.append("t", "a", "s", {}, conn=c)
            raise RuntimeError("crash after the audit entry, before commit")
    except RuntimeError:
        pass
    assert store.audit.list() == []
    assert store.audit.verify().ok


def test_concurrent_appends_keep_one_chain(db_url: str, clock: SimulatedClock) -> None:
    stores = [Store.open(db_url, clock) for _ in range(2)]
    errors: list[BaseException] = []

    def work(s: Store, k: int) -> None:
        try:
            for i in range(25):
                s.audit.append(f"w{k}", "x", f"{k}:{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, k)) for k, s in enumerate(stores * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    v = stores[0].audit.verify()
    assert v.ok and v.entries == 100
    for s in stores:
        s.close()


def test_migrations_are_idempotent(db_url: str, clock: SimulatedClock) -> None:
    a = Store.open(db_url, clock)
    a.audit.append("t", "a", "s")
    b = Store.open(db_url, clock)  # migrating again changes nothing and keeps data
    assert b.audit.verify().entries == 1
    with b.engine.connect() as c:
        assert (
            c.execute(text("select version_num from tradeloop_alembic_version")).scalar()
            == SCHEMA_HEAD
        )
    a.close()
    b.close()
