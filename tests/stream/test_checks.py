"""The late/duplicate/future policy against what is persisted, and a bounded index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tradeloop.data.bar_rules import Bar
from tradeloop.stream.checks import SeriesIndex, judge

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
NOW = T0 + 100 * H


def bar(i: int, symbol: str = "AAA", close: float = 10.0) -> Bar:
    return Bar(symbol, T0 + i * H, 10.0, 11.0, 9.0, close, 5.0)


def _none(symbol: str, ts: datetime) -> Bar | None:
    return None


def test_policy() -> None:
    index = SeriesIndex.of([bar(i) for i in range(50)], lateness=6 * H)
    tol = timedelta(minutes=5)
    assert judge(bar(50), index, NOW, tol, _none) == ("accept", "")
    assert judge(bar(47), index, NOW, tol, _none)[0] == "duplicate"
    verdict, reason = judge(bar(47, close=10.5), index, NOW, tol, _none)
    assert verdict == "conflict" and "AAA at 2024-01-02T23:00:00+00:00" in reason
    assert judge(bar(30), index, NOW, tol, _none)[0] == "too_late"
    assert judge(bar(30), index, NOW, tol, lambda s, t: bar(30))[0] == "duplicate"  # redelivered
    future = Bar("AAA", datetime(9999, 12, 31, tzinfo=UTC), 10, 11, 9, 10, 1)
    verdict, reason = judge(future, index, NOW, tol, _none)
    assert verdict == "future" and "9999-12-31" in reason
    assert judge(bar(1, "NEW"), index, NOW, tol, _none) == ("accept", "")  # a new symbol


def test_out_of_order_within_the_window_is_accepted() -> None:
    index = SeriesIndex.of([bar(i) for i in range(10) if i != 7], lateness=6 * H)
    assert judge(bar(7), index, NOW, timedelta(0), _none) == ("accept", "")


def test_the_index_keeps_only_the_lateness_window() -> None:
    index = SeriesIndex.of([bar(i) for i in range(10_000)], lateness=6 * H)
    assert len(index.recent["AAA"]) == 7 and index.newest["AAA"] == T0 + 9_999 * H
