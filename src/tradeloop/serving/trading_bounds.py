"""What `POST /v1/bars` accepts: bounded batches, bounded symbols, no bars from the future.

Bars are persisted online state, so one bad bar outlives its request: a bar stamped
9999-12-31 once made every later real bar "not after the symbol's last one", for good, and
100k made-up symbols grew memory by 640 MB. So a batch is refused whole, before any of it is
applied, when:

- it has more than `serving.max_bars` bars (413);
- a bar is more than `serving.future_tolerance` past the gateway's clock (400, naming it);
- a symbol is outside `serving.symbols`, the pipeline's universe, when one is set (400);
- it would make the gateway track more than `serving.max_symbols` symbols (400).

A state saved before these bounds existed may hold such a bar already; `prune` drops those
symbols from it when the gateway starts, so the next real bar is accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from tradeloop.clock import Clock
from tradeloop.serving.http import ApiError
from tradeloop.spec import ServingSpec

log = logging.getLogger(__name__)

ParsedBar = tuple[str, datetime, dict[str, float]]


class BarBounds:
    def __init__(
        self, serving: ServingSpec, clock: Clock, universe: Sequence[str] | None = None
    ) -> None:
        self.max_bars = serving.max_bars
        self.max_symbols = serving.max_symbols
        self.tolerance = serving.future_tolerance
        self.clock = clock
        given = serving.symbols if serving.symbols is not None else universe
        self.universe = frozenset(given) if given is not None else None

    def check_size(self, n: int) -> None:
        if n > self.max_bars:
            raise ApiError(
                413,
                f"{n} bars in one request is over the limit of {self.max_bars} "
                "(deployment.serving.max_bars); send them in smaller batches",
            )

    def check(self, bars: Sequence[ParsedBar], tracked: Collection[str]) -> None:
        """Refuse the batch if any bar is out of bounds; `tracked`: symbols already held."""
        latest = self.clock.now() + self.tolerance
        new: dict[str, None] = {}  # in order of appearance
        for i, (symbol, ts, _) in enumerate(bars):
            if ts > latest:
                raise ApiError(
                    400,
                    f"bars[{i}] ({symbol} at {ts.isoformat()}) is in the future: more than "
                    f"{self.tolerance} past the gateway's clock ({self.clock.now().isoformat()})",
                )
            if self.universe is not None and symbol not in self.universe:
                raise ApiError(
                    400,
                    f"bars[{i}]: symbol {symbol!r} is not in the pipeline's universe "
                    f"({len(self.universe)} symbols, e.g. {sorted(self.universe)[:5]})",
                )
            if symbol not in tracked:
                new[symbol] = None
        if len(tracked) + len(new) > self.max_symbols:
            raise ApiError(
                400,
                f"bars for {len(new)} new symbols (first {next(iter(new))!r}) would make "
                f"{len(tracked) + len(new)} tracked symbols, over the limit of "
                f"{self.max_symbols} (deployment.serving.max_symbols)",
            )

    def prune(self, doc: dict[str, Any]) -> list[str]:
        """Drop from a saved trading state (`TradingState.save`'s document) the symbols whose
        last bar is past the tolerance or which are outside the universe; return them."""
        latest = self.clock.now() + self.tolerance
        states = doc.get("online", {}).get("states", {})
        dropped = []
        for symbol, saved in list(states.items()):
            last = saved.get("last") if isinstance(saved, dict) else None
            future = isinstance(last, str) and datetime.fromisoformat(last) > latest
            if future or (self.universe is not None and symbol not in self.universe):
                dropped.append(symbol)
                del states[symbol]
                doc.get("latest", {}).pop(symbol, None)
        if dropped:
            log.warning(
                "dropped %d symbols from the saved online state (bars in the future or outside "
                "the universe): %s",
                len(dropped),
                dropped[:10],
            )
        return dropped
