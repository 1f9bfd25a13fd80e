"""The JSON bar format: each bar judged alone, every bad shape refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tradeloop.data.bar_rules import Bar
from tradeloop.stream.messages import decode, encode

GOOD = {
    "symbol": "AAA",
    "timestamp": "2024-01-02T10:00:00Z",
    "open": 10.0,
    "high": 11.0,
    "low": 9.5,
    "close": 10.5,
    "volume": 1000,
}


def test_one_bar_a_list_and_a_bars_object_all_decode() -> None:
    for doc in (GOOD, [GOOD, {**GOOD, "symbol": "BBB"}], {"bars": [GOOD]}):
        bars, bad = decode(json.dumps(doc).encode())
        assert bad == [] and bars and bars[0].symbol == "AAA"
        assert bars[0].timestamp == datetime(2024, 1, 2, 10, tzinfo=UTC)


def test_encode_then_decode_is_the_identity() -> None:
    bars, _ = decode(json.dumps([GOOD, {**GOOD, "symbol": "B.X"}]).encode())
    assert decode(encode(bars)) == (bars, [])


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (b"not json{", "not_json", "not JSON"),
        (b'{"symbol": "AAA", "open": NaN}', "not_finite", "NaN"),
        (json.dumps({**GOOD, "open": 1e400}).encode(), "not_finite", "finite"),  # inf
        (json.dumps({k: v for k, v in GOOD.items() if k != "close"}).encode(), "fields", "close"),
        (json.dumps({**GOOD, "extra": 1}).encode(), "fields", "extra"),
        (json.dumps({**GOOD, "open": "10"}).encode(), "type", "open must be a number"),
        (json.dumps({**GOOD, "volume": True}).encode(), "type", "volume"),
        (json.dumps({**GOOD, "timestamp": 1704189600}).encode(), "type", "timestamp"),
        (json.dumps({**GOOD, "timestamp": "yesterday"}).encode(), "timestamp", "ISO 8601"),
        (json.dumps({**GOOD, "high": 9.0, "low": 9.5}).encode(), "ohlc", "low 9.5 is above high"),
        (json.dumps({**GOOD, "close": 12.0}).encode(), "ohlc", "within"),
        (json.dumps({**GOOD, "open": -1.0}).encode(), "range", "> 0"),
        (json.dumps({**GOOD, "symbol": "A/B"}).encode(), "symbol", "symbol"),
        (b"42", "shape", "a bar, a list"),
        (json.dumps({"bars": 3}).encode(), "shape", "list of bars"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(payload: bytes, code: str, words: str) -> None:
    bars, bad = decode(payload)
    assert bars == []
    assert [r.code for r in bad] == [code]
    assert words in bad[0].reason
    assert bad[0].raw  # the raw text is kept for the dead letter


def test_one_bad_bar_does_not_drop_its_neighbours() -> None:
    msg = json.dumps([GOOD, {**GOOD, "symbol": "BBB", "high": 1.0}, {**GOOD, "symbol": "CCC"}])
    bars, bad = decode(msg.encode())
    assert [b.symbol for b in bars] == ["AAA", "CCC"]
    assert len(bad) == 1 and "bars[1]" in bad[0].reason and "BBB" in bad[0].raw


def test_naive_timestamps_are_utc() -> None:
    bars, _ = decode(json.dumps({**GOOD, "timestamp": "2024-01-02T10:00:00"}).encode())
    assert bars == [Bar("AAA", datetime(2024, 1, 2, 10, tzinfo=UTC), 10.0, 11.0, 9.5, 10.5, 1000.0)]
