"""The JSON message format of `data.stream` (docs/streaming.md): one bar, a list of bars, or
`{"bars": [...]}` per message.

Most messages are all good: `fastparse` checks a message's bars as columns, and only a message
with something to refuse goes through `parse_bar` bar by bar, for the reasons. A message is never all-or-nothing: each bar in it is accepted or rejected on its own, so one bad
bar from a vendor's batch does not drop its neighbours. A message that is not JSON at all, or
not one of the three shapes, is rejected whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tradeloop.data.bar_rules import Bar, BarError, parse_bar
from tradeloop.stream.fastparse import parse_many

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
FAST_FROM = 8  # bars in a message from which the columnar checks beat parse_bar's


@dataclass(frozen=True)
class Rejected:
    """A message or one bar of it that was refused: the raw text, a stable code and a reason."""

    raw: str
    code: str
    reason: str


def _text(data: bytes, limit: int = 2000) -> str:
    return data[:limit].decode("utf-8", errors="replace")


def decode(data: bytes) -> tuple[list[Bar], list[Rejected]]:
    """The message's bars that pass the per-bar rules, and a Rejected for each one that doesn't."""
    if len(data) > MAX_MESSAGE_BYTES:
        return [], [
            Rejected(
                _text(data), "too_large", f"message is {len(data)} bytes, over {MAX_MESSAGE_BYTES}"
            )
        ]
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if any(w in data for w in (b"NaN", b"Infinity")):  # Python's json.dumps writes these
            reason = "NaN and Infinity are not finite numbers (nor JSON)"
            return [], [Rejected(_text(data), "not_finite", reason)]
        return [], [Rejected(_text(data), "not_json", f"message is not JSON: {exc}")]
    if isinstance(doc, dict) and "bars" in doc:
        items = doc["bars"]
        if not isinstance(items, list) or len(doc) != 1:
            return [], [
                Rejected(_text(data), "shape", '{"bars": ...} must hold only a list of bars')
            ]
    elif isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict):
        items = [doc]
    else:
        return [], [
            Rejected(
                _text(data), "shape", 'message must be a bar, a list of bars or {"bars": [...]}'
            )
        ]
    fast = parse_many(items) if len(items) >= FAST_FROM else None
    if fast is not None:
        return fast, []
    bars: list[Bar] = []
    rejected: list[Rejected] = []
    for i, item in enumerate(items):
        try:
            bars.append(parse_bar(item, f"bars[{i}]" if len(items) > 1 else "bar"))
        except BarError as exc:
            rejected.append(Rejected(_text(orjson.dumps(item)), exc.code, str(exc)))
    return bars, rejected


def encode(bars: list[Bar]) -> bytes:
    """Bars as one message, in the format `decode` reads (replay and tests publish this)."""
    return orjson.dumps({"bars": [b.to_json() for b in bars]})
