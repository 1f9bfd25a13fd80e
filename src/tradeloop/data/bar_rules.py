"""One bar, checked by the batch rules (`data.validation`'s per-row checks), for live input.

Live bars arrive one message at a time, so the per-row rules of `validate_bars` are applied
here to a single bar: every field present and typed, a known-shaped symbol, an ISO 8601
timestamp (naive means UTC), finite positive prices, volume >= 0, and low <= open, close <= high.
The per-series rules (time order, duplicates, gaps) need the symbol's history and live in
`tradeloop.stream.checks`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SYMBOL = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9._:=^-]{0,63}$")
BAR_FIELDS = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
_isfinite = math.isfinite


class BarError(ValueError):
    """A bar that breaks a rule; `code` is a short stable reason (a metric label)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Bar:
    symbol: str
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def key(self) -> tuple[str, datetime]:
        return self.symbol, self.timestamp

    def values(self) -> tuple[float, float, float, float, float]:
        return self.open, self.high, self.low, self.close, self.volume

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timestamp": self.timestamp.isoformat(),
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }


def parse_bar(raw: Any, what: str = "bar") -> Bar:
    """`raw` (a decoded JSON object) as a Bar, or BarError naming the field and the rule."""
    if not isinstance(raw, dict):
        raise BarError("not_an_object", f"{what} must be an object with {', '.join(BAR_FIELDS)}")
    missing = [k for k in BAR_FIELDS if k not in raw]
    if missing or len(raw) != len(BAR_FIELDS):  # every field there and no other: no extras
        extra = sorted(str(k) for k in raw if k not in BAR_FIELDS)
        raise BarError("fields", f"{what}: missing fields {missing}, unknown fields {extra}")
    symbol, stamp = raw["symbol"], raw["timestamp"]
    if not isinstance(symbol, str) or not SYMBOL.match(symbol):
        raise BarError(
            "symbol", f"{what}.symbol must be 1-64 letters, digits or ._:=^- (got {symbol!r})"
        )
    if not isinstance(stamp, str):
        raise BarError("type", f"{what}.timestamp must be an ISO 8601 string, got {stamp!r}")
    try:
        ts = datetime.fromisoformat(stamp)
    except ValueError:
        raise BarError("timestamp", f"{what}.timestamp is not ISO 8601: {stamp!r}") from None
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    o, h = _number(raw, "open", what), _number(raw, "high", what)
    lo, c = _number(raw, "low", what), _number(raw, "close", what)
    vol = _number(raw, "volume", what)
    if lo > h:
        raise BarError("ohlc", f"{what}: low {lo} is above high {h}")
    if not lo <= o <= h or not lo <= c <= h:
        raise BarError(
            "ohlc", f"{what}: open {o} and close {c} must lie within [low {lo}, high {h}]"
        )
    return Bar(symbol, ts, o, h, lo, c, vol)


def _number(raw: dict[str, Any], k: str, what: str) -> float:
    v = raw[k]
    if type(v) is not float and type(v) is not int:
        raise BarError("type", f"{what}.{k} must be a number, got {v!r}")
    v = float(v)
    if not _isfinite(v):
        raise BarError("not_finite", f"{what}.{k} must be finite, got {v}")
    if v <= 0 and (v < 0 or k != "volume"):
        raise BarError("range", f"{what}.{k} must be {'>= 0' if k == 'volume' else '> 0'}, got {v}")
    return v
