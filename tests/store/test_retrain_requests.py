"""Retraining requests in the store, on SQLite and PostgreSQL: recorded once per id, a reused
id with another reason refused, bad ids and reasons named, and a claim taken only once."""

from __future__ import annotations

import pytest

from tradeloop.errors import BadInput
from tradeloop.store import Store
from tradeloop.store import retrain_requests as rr


def test_recorded_once_per_id(store: Store) -> None:
    first = rr.request_retraining(store, "m", "evt-1", "nightly", actor="token:ci")
    again = rr.request_retraining(store, "m", "evt-1", "nightly", actor="token:ci")
    assert (first.created, again.created) == (True, False)
    assert again.status == "requested"
    other_model = rr.request_retraining(store, "n", "evt-1", "nightly", actor="token:ci")
    assert other_model.created  # ids are per pipeline
    assert [e.action for e in store.audit.list()].count("training.request") == 2
    assert store.audit.verify().ok


def test_reused_id_with_another_reason_is_refused(store: Store) -> None:
    rr.request_retraining(store, "m", "evt-1", "nightly", actor="token:ci")
    with pytest.raises(rr.RequestConflict, match=r"evt-1.*nightly"):
        rr.request_retraining(store, "m", "evt-1", "drift", actor="token:ci")


@pytest.mark.parametrize(
    ("rid", "reason", "message"),
    [
        ("", "r", "'id' must be a non-empty string"),
        (7, "r", "'id' must be a non-empty string"),
        ("x" * 201, "r", "at most 200"),
        ("a\nb", "r", "printable"),
        ("ok", "  ", "'reason' must be a non-empty string"),
        ("ok", "r" * 1001, "at most 1000"),
    ],
)
def test_bad_input_is_named(store: Store, rid: object, reason: object, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        rr.check_request(rid, reason)
    if isinstance(rid, str) and isinstance(reason, str):
        with pytest.raises(BadInput, match=message):
            rr.request_retraining(store, "m", rid, reason, actor="t")
    assert rr.oldest_request(store, "m") is None  # nothing half-written


def test_oldest_first_and_claimed_once(store: Store) -> None:
    rr.request_retraining(store, "m", "a", "first", actor="t")
    rr.request_retraining(store, "m", "b", "second", actor="t")
    assert rr.oldest_request(store, "m") == ("request:a", "first")
    now = store.clock.now()
    with store.begin() as c:
        assert rr.claim_request(c, "m", "request:a", now) is True
    with store.begin() as c:
        assert rr.claim_request(c, "m", "request:a", now) is False
    assert rr.oldest_request(store, "m") == ("request:b", "second")
