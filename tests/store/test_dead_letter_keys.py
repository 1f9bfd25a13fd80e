"""The dead-letter key on SQLite and PostgreSQL: the same refusal of the same message is one
row however often it is written; the same text in another message, or refused by another
consumer, is a row of its own."""

from __future__ import annotations

from tradeloop.clock import SimulatedClock
from tradeloop.store import Store
from tradeloop.stream import deadletters
from tradeloop.stream.messages import Rejected


def test_recording_a_refusal_twice_writes_one_row(db_url: str, clock: SimulatedClock) -> None:
    store = Store.open(db_url, clock)
    try:
        bad = Rejected("not json", "not_json", "message is not JSON")
        other = Rejected('{"symbol": "A"}', "fields", "missing timestamp")
        m1 = deadletters.message_id(b"not json", "S:1")
        m2 = deadletters.message_id(b"not json", "S:2")
        assert deadletters.record(store, "c", [(m1, bad), (m1, other)]) == 2
        assert deadletters.record(store, "c", [(m1, bad), (m1, other)]) == 0  # redelivered
        assert deadletters.record(store, "c", [(m2, bad), (m2, bad)]) == 1  # another message
        assert deadletters.record(store, "d", [(m1, bad)]) == 1  # another consumer
        assert deadletters.counts(store, "c") == {"not_json": 2, "fields": 1}
        assert len(deadletters.listed(store, "d")) == 1
    finally:
        store.close()


def test_without_a_broker_id_the_content_names_the_message() -> None:
    assert deadletters.message_id(b"x", None) == deadletters.message_id(b"x", None)
    assert deadletters.message_id(b"x", None) != deadletters.message_id(b"y", None)
    assert deadletters.message_id(b"x", "S:7") == "S:7"
