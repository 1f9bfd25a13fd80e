"""The per-bar rules of `data.bar_rules.parse_bar` over a whole message at once, for the common
case where every bar passes: ~1 µs a bar instead of ~5.

The fields are read as columns, the numbers checked with numpy (finite, positive, volume >= 0,
low <= open, close <= high), and symbols and timestamps through small caches (a feed repeats
the same few symbols and, within a batch, the same timestamps). Anything unusual (a field
missing or extra, a type other than float or int, a value that breaks a rule) answers None, and
the caller runs `parse_bar` on every bar, which refuses each bad one with its own reason. So
this path never accepts what `parse_bar` would refuse, nor changes a value it would keep.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from tradeloop.data.bar_rules import BAR_FIELDS, SYMBOL, Bar

_KEYS = frozenset(BAR_FIELDS)
_NUMBERS = ("open", "high", "low", "close", "volume")
_CACHE_MAX = 50_000
_symbols: set[str] = set()
_stamps: dict[str, datetime] = {}


def parse_many(items: list[Any]) -> list[Bar] | None:
    """Every item as a Bar when all of them pass the rules; None when any might not."""
    if not items:
        return []
    for item in items:
        if type(item) is not dict or item.keys() != _KEYS:
            return None
    symbols = [d["symbol"] for d in items]
    stamps = [d["timestamp"] for d in items]
    columns = []
    for name in _NUMBERS:
        col = [d[name] for d in items]
        kinds = set(map(type, col))
        if kinds == {float}:
            columns.append(col)
        elif kinds <= {float, int}:  # not bool: type(True) is bool
            columns.append([float(x) for x in col])
        else:
            return None
    o, h, lo, c, v = (np.array(col, dtype=np.float64) for col in columns)
    prices_ok = (o > 0.0) & (h > 0.0) & (lo > 0.0) & (c > 0.0) & (v >= 0.0)
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    inside = (lo <= h) & (lo <= o) & (o <= h) & (lo <= c) & (c <= h)
    if not (prices_ok & finite & inside).all():
        return None
    if not _symbols_ok(symbols):
        return None
    times = _times(stamps)
    if times is None:
        return None
    return list(map(Bar, symbols, times, *columns))


def _symbols_ok(symbols: list[Any]) -> bool:
    for s in set(symbols) - _symbols:
        if type(s) is not str or not SYMBOL.match(s):
            return False
        if len(_symbols) >= _CACHE_MAX:
            _symbols.clear()
        _symbols.add(s)
    return True


def _times(stamps: list[Any]) -> list[datetime] | None:
    out = []
    cache = _stamps
    for s in stamps:
        ts = cache.get(s) if type(s) is str else None
        if ts is None:
            if type(s) is not str:
                return None
            try:
                ts = datetime.fromisoformat(s)
            except ValueError:
                return None
            ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[s] = ts
        out.append(ts)
    return out
