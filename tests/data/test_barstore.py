"""The live bar store: durable parts, compaction that loses nothing, order-free content."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tradeloop.data.bar_rules import Bar
from tradeloop.data.barstore import BarStore
from tradeloop.data.snapshot import content_hash

T0 = datetime(2024, 1, 1, 20, tzinfo=UTC)


def bars(n: int, symbols: tuple[str, ...] = ("AAA", "BBB")) -> list[Bar]:
    return [
        Bar(s, T0 + timedelta(hours=i), 10 + i, 11 + i, 9 + i, 10.5 + i, 100.0 * i)
        for i in range(n)
        for s in symbols
    ]


def test_append_read_and_compact(tmp_path: Path) -> None:
    store = BarStore(tmp_path / "bars")
    assert store.read().height == 0
    data = bars(30)
    store.append(data[:20])
    store.append(data[15:])  # overlap: redelivered bars
    before = store.read()
    assert before.height == 60
    assert store.compact() == 2
    after = store.read()
    assert after.equals(before)
    assert not list((tmp_path / "bars" / "incoming").glob("*.parquet"))
    days = sorted(p.parent.name for p in (tmp_path / "bars").glob("symbol=AAA/date=*/bars.parquet"))
    assert days == ["date=2024-01-01", "date=2024-01-02", "date=2024-01-03"]
    assert store.compact() == 0
    assert store.lookup("BBB", T0 + timedelta(hours=5)) == data[11]
    assert store.lookup("BBB", T0 + timedelta(hours=500)) is None


def test_content_does_not_depend_on_arrival_order_or_compaction(tmp_path: Path) -> None:
    data = bars(48, ("AAA", "BBB", "CCC"))
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    for i in range(0, len(data), 10):
        a.append(data[i : i + 10])
    shuffled = data[:]
    random.Random(3).shuffle(shuffled)
    for i in range(0, len(shuffled), 7):
        b.append(shuffled[i : i + 7])
        if i % 21 == 0:
            b.compact()
    assert content_hash(a.read()) == content_hash(b.read())
    a.compact()
    assert content_hash(a.read()) == content_hash(b.read())


def test_a_compaction_killed_before_deleting_its_parts_is_redone(tmp_path: Path) -> None:
    store = BarStore(tmp_path)
    store.append(bars(10))
    part = next((tmp_path / "incoming").glob("part-*.parquet"))
    saved = part.read_bytes()
    store.compact()
    part.write_bytes(saved)  # as if killed after writing the partitions, before the unlink
    assert store.read().height == 20
    store.compact()
    assert store.read().height == 20
