"""tradeloop's trading endpoints: bars in, signals out.

`POST /v1/bars` feeds bars to the gateway's online features (`tradeloop.features`, the same
definitions training used, so serving sees the values the model was trained on). Bars of one
timestamp are applied together, all or none; a bar not after its symbol's last one is skipped
and reported, so a client may resend a batch safely. `GET /v1/signals/{symbol}` scores the
symbol's latest feature row (sticky-routed by symbol) and turns the prediction into a position
with `evaluation.positions.PositionRule`, built from the backtest spec and the model's task
exactly as the backtest that gated the model built it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from anyio import to_thread
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.data import bar_rules
from tradeloop.errors import BadInput
from tradeloop.features import OnlineFeatures
from tradeloop.serving.context import Ctx
from tradeloop.serving.explain import Explanations, wants
from tradeloop.serving.gateway import Gateway, ok
from tradeloop.serving.http import ApiError, parse_json, read_body, require_json
from tradeloop.serving.openapi import Open
from tradeloop.serving.protocol import (
    JSON,
    Base,
    Call,
    DocContext,
    Example,
    Op,
    ProtocolOptions,
    Reply,
)
from tradeloop.serving.schemas import Strict
from tradeloop.serving.trading_bounds import BarBounds
from tradeloop.serving.trading_signals import signal, signals
from tradeloop.spec import FeatureSpec

log = logging.getLogger(__name__)

SYMBOL = bar_rules.SYMBOL


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def parse_bar(bar: Any, i: int) -> tuple[str, datetime, dict[str, float]]:
    """One bar of a request, by the same rules live bars from a broker meet (`data.bar_rules`)."""
    try:
        b = bar_rules.parse_bar(bar, f"bars[{i}]")
    except bar_rules.BarError as exc:
        raise _bad(str(exc)) from None
    values = {"open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume}
    return b.symbol, b.timestamp, values


class TradingState:
    """Online features plus each symbol's latest full feature row (ranks included: a row is
    stored as its own bars left it and read through `row`, which brings its ranks up to date
    with the bars of other symbols at its timestamp since)."""

    def __init__(self, features: list[FeatureSpec]) -> None:
        self.online = OnlineFeatures(features)
        self.latest: dict[str, tuple[datetime, dict[str, float | None]]] = {}

    def apply(
        self, bars: list[tuple[str, datetime, dict[str, float]]]
    ) -> tuple[int, list[dict[str, str]]]:
        """Apply new bars timestamp by timestamp; return (accepted, skipped)."""
        seen: set[tuple[str, datetime]] = set()
        groups: dict[datetime, dict[str, dict[str, float]]] = defaultdict(dict)
        skipped: list[dict[str, str]] = []
        for symbol, ts, values in bars:
            if (symbol, ts) in seen:
                raise _bad(f"bar for {symbol} at {ts.isoformat()} appears twice")
            seen.add((symbol, ts))
            last = self.online.last_timestamp(symbol)
            if last is not None and ts <= last:
                skipped.append(
                    {
                        "symbol": symbol,
                        "timestamp": ts.isoformat(),
                        "reason": f"not after the symbol's last bar at {last.isoformat()}",
                    }
                )
                continue
            groups[ts][symbol] = values
        try:  # all timestamps or none; each symbol's row at its latest bar
            self.latest.update(self.online.update_latest(groups))
        except BadInput as exc:
            raise _bad(str(exc)) from exc
        return sum(len(g) for g in groups.values()), skipped

    def row(self, symbol: str) -> tuple[datetime, dict[str, float | None]] | None:
        """The symbol's latest (timestamp, full feature row), None before its first bar."""
        got = self.latest.get(symbol)
        if got is None:
            return None
        ts, row = got
        return ts, self.online.fresh(symbol, ts, row)

    def to_doc(self) -> dict[str, Any]:
        """The whole state as JSON-able data (the saved file; a worker's copy for a sibling)."""
        fresh = self.online.fresh
        return {
            "online": self.online.to_dict(),
            "latest": {
                s: [ts.isoformat(), fresh(s, ts, row)] for s, (ts, row) in self.latest.items()
            },
        }

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_doc()))
        os.replace(tmp, path)

    def load(self, path: Path, prune: Callable[[dict[str, Any]], object] | None = None) -> bool:
        """Continue from a saved state if it was made with the same features; `prune` may
        first drop symbols from the saved document (see `BarBounds.prune`)."""
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return False
        except ValueError as exc:
            log.warning("ignoring the saved online-feature state %s: %s", path, exc)
            return False
        return self.load_doc(doc, str(path), prune)

    def load_doc(
        self,
        doc: Any,
        origin: str,
        prune: Callable[[dict[str, Any]], object] | None = None,
    ) -> bool:
        """Continue from `to_doc`'s data (from `origin`) if made with the same features."""
        try:
            if prune is not None:
                prune(doc)
            online = OnlineFeatures.from_dict(doc["online"])
        except (ValueError, KeyError, TypeError, BadInput) as exc:
            log.warning("ignoring the saved online-feature state %s: %s", origin, exc)
            return False
        if online.features != self.online.features:
            log.warning("ignoring the saved online-feature state %s: the features changed", origin)
            return False
        self.online = online
        self.latest = {
            s: (datetime.fromisoformat(ts), row) for s, (ts, row) in doc["latest"].items()
        }
        return True


NAME = "trading"
STATE_FILE = "online_features.json"
SAVE_EVERY = 5.0  # seconds between saves of the online state while bars come in


class Bar(Strict):
    symbol: Annotated[str, Field(pattern=SYMBOL.pattern)]
    timestamp: datetime
    open: Annotated[float, Field(gt=0)]
    high: Annotated[float, Field(gt=0)]
    low: Annotated[float, Field(gt=0)]
    close: Annotated[float, Field(gt=0)]
    volume: Annotated[float, Field(ge=0)]


class Bars(Strict):
    bars: Annotated[list[Bar], Field(min_length=1)]


class BarsResponse(Open):
    accepted: int
    skipped: list[dict[str, Any]]
    symbols: list[str]
    signals: list[dict[str, Any]] | None = Field(
        None, description="with ?signals=true: each fed symbol's signal, as GET /v1/signals"
    )
    not_ready: list[dict[str, str]] | None = Field(
        None, description="with ?signals=true: the fed symbols without a signal yet, and why"
    )


class Signal(Open):
    symbol: str
    prediction: float
    position: Literal[-1, 0, 1]
    side: Literal["long", "short", "flat"]
    model: str
    version: str
    variant: str
    feature_timestamp: datetime
    features: dict[str, float]


class TradingProtocol(Base):
    """Bars in, signals out; on only when the gateway has the spec's features."""

    name = NAME

    def __init__(self, gw: Gateway, options: ProtocolOptions) -> None:
        self.gw = gw
        self.rule = options.rule
        self.state = TradingState(list(options.features))
        self.state_file = options.state_dir / STATE_FILE if options.state_dir else None
        self.saves = options.save_state
        self.bounds = BarBounds(gw.serving, gw.clock)
        self.lock = threading.Lock()  # one batch at a time changes the online state
        self.waiting = 0  # batches inside the worker thread, waiting for or holding the lock
        self.save_every = SAVE_EVERY
        self._saved = time.monotonic()
        self.explanations = Explanations(gw)

    def schemas(self, doc: DocContext) -> list[type[BaseModel]]:
        return [Bars, BarsResponse, Signal]

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]:
        return {"/v1/bars": {}, "/v1/signals/{symbol}": {}}

    def start(self) -> None:
        if self.state_file is not None:
            self.state.load(self.state_file, self.bounds.prune)

    def _save_now_and_then(self) -> None:
        """Save the online state at most every `save_every` seconds (under `lock`), so a
        SIGKILL loses at most that much of it; a graceful stop saves it in any case."""
        now = time.monotonic()
        if self.state_file is None or not self.saves or now - self._saved < self.save_every:
            return
        self._saved = now
        try:
            self.state.save(self.state_file)
        except OSError as exc:
            self.gw.errors.report("online_state", exc, "could not save the online-feature state")

    def stop(self) -> None:
        if self.state_file is not None and self.saves:
            try:
                self.state.save(self.state_file)
            except OSError:
                log.exception("could not save the online-feature state")

    def example(self, features: Sequence[str], row: Sequence[float]) -> Example:
        """Enough simulated bars to warm every feature up, then the first symbol's signal."""
        from datetime import timedelta

        from tradeloop.data.simulator import simulate
        from tradeloop.spec import SimulatorSpec

        frame = simulate(
            SimulatorSpec(symbols=["AAA", "BBB", "CCC"], bars=80, seed=3), timedelta(hours=1)
        )
        bars = [
            {**r, "timestamp": r["timestamp"].isoformat()}
            for r in frame.sort("timestamp", "symbol").to_dicts()
        ]
        return Example(
            (Call("POST", "/v1/bars", {"bars": bars}), Call("GET", "/v1/signals/AAA")),
            lambda answer: (answer["features"], float(answer["prediction"])),
        )

    def operations(self) -> list[Op]:
        gw, state, rule, explanations = self.gw, self.state, self.rule, self.explanations
        limit = gw.serving.max_body_bytes

        def feed(raw: bytes) -> dict[str, Any]:
            """Parse, bound and apply a batch: in a worker thread, so a big batch never holds
            the event loop (and every other request) while it is applied."""
            doc = parse_json(raw)
            if not isinstance(doc, dict) or set(doc) != {"bars"}:
                raise _bad("the body must be an object with one field, 'bars' (an array of bars)")
            bars = doc["bars"]
            if not isinstance(bars, list) or not bars:
                raise _bad("bars must be a non-empty array")
            self.bounds.check_size(len(bars))
            parsed = [parse_bar(b, i) for i, b in enumerate(bars)]
            with self.lock:
                self.bounds.check(parsed, frozenset(state.online.symbols))
                accepted, skipped = state.apply(parsed)
                self._save_now_and_then()
            symbols = sorted({s for s, _, _ in parsed})
            return {"accepted": accepted, "skipped": skipped, "symbols": symbols}

        def feed_and_score(raw: bytes, override: str | None, ctx: Ctx) -> dict[str, Any]:
            fed = feed(raw)
            fed["signals"], fed["not_ready"] = signals(
                gw, state, rule, fed["symbols"], ctx, override
            )
            return fed

        async def post_bars(request: Request, ctx: Ctx) -> Response:
            await gw.authorize_feed(ctx)
            # ?signals=true: each fed symbol's signal in the answer (checked before anything
            # is applied, so a token that may feed but not predict changes nothing)
            scoring = wants(request.query_params.get("signals"), "signals")
            override = await gw.authorize_predict(ctx) if scoring else None
            require_json(ctx.headers)
            raw = await read_body(request, ctx.headers, limit)
            self.waiting += 1
            try:
                if scoring:
                    return ok(await to_thread.run_sync(feed_and_score, raw, override, ctx))
                return ok(await to_thread.run_sync(feed, raw))
            finally:
                self.waiting -= 1

        async def get_signal(request: Request, ctx: Ctx) -> Response:
            override = await gw.authorize_predict(ctx)
            symbol = request.path_params["symbol"]
            explain = wants(request.query_params.get("explain"), "explain")
            return ok(signal(gw, state, rule, symbol, ctx, override, (explanations, explain)))

        return [
            Op(
                "POST",
                "/v1/bars",
                post_bars,
                "post_bars",
                {200: Reply("BarsResponse", "Bars applied (and any skipped)")},
                (400, 413, 415),
                {JSON: "Bars"},
                summary="Feed bars to the online features (role: serving.bars_role)",
                token=True,
            ),
            Op(
                "GET",
                "/v1/signals/{symbol}",
                get_signal,
                "get_signal",
                {200: Reply("Signal", "Prediction and position")},
                (400, 404, 409, 503),
                summary="The latest signal for a symbol",
                predict=True,
            ),
        ]


def factory(gw: Gateway, options: ProtocolOptions) -> TradingProtocol | None:
    return TradingProtocol(gw, options) if options.features else None
