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
import math
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.errors import BadInput
from tradeloop.features import OnlineFeatures
from tradeloop.serving.context import Ctx
from tradeloop.serving.explain import Explanations, wants
from tradeloop.serving.gateway import Gateway, ok
from tradeloop.serving.http import ApiError, parse_json, read_body, require_json
from tradeloop.serving.inputs import MissingFeatures, Rows
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
from tradeloop.spec import FeatureSpec

log = logging.getLogger(__name__)

SYMBOL = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9._:=^-]{0,63}$")
BAR_FIELDS = ("symbol", "timestamp", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def parse_bar(bar: Any, i: int) -> tuple[str, datetime, dict[str, float]]:
    what = f"bars[{i}]"
    if not isinstance(bar, dict):
        raise _bad(f"{what} must be an object with {', '.join(BAR_FIELDS)}")
    missing = [k for k in BAR_FIELDS if k not in bar]
    extra = sorted(k for k in bar if k not in BAR_FIELDS)
    if missing or extra:
        raise _bad(f"{what}: missing fields {missing}, unknown fields {extra}")
    symbol, stamp = bar["symbol"], bar["timestamp"]
    if not isinstance(symbol, str) or not SYMBOL.match(symbol):
        raise _bad(f"{what}.symbol must be 1-64 letters, digits or ._:=^- (got {symbol!r})")
    if not isinstance(stamp, str):
        raise _bad(f"{what}.timestamp must be an ISO 8601 string")
    try:
        ts = datetime.fromisoformat(stamp)
    except ValueError:
        raise _bad(f"{what}.timestamp is not ISO 8601: {stamp!r}") from None
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    values: dict[str, float] = {}
    for k in (*PRICES, "volume"):
        v = bar[k]
        if type(v) is not float and type(v) is not int:
            raise _bad(f"{what}.{k} must be a number")
        v = float(v)
        if not math.isfinite(v) or v < 0 or (v == 0 and k != "volume"):
            raise _bad(
                f"{what}.{k} must be finite and {'>= 0' if k == 'volume' else '> 0'}, got {v}"
            )
        values[k] = v
    if values["low"] > values["high"]:
        raise _bad(f"{what}: low {values['low']} is above high {values['high']}")
    return symbol, ts, values


class TradingState:
    """Online features plus each symbol's latest full feature row (ranks included)."""

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
        accepted = 0
        for ts in sorted(groups):
            try:
                rows = self.online.update_bars(ts, groups[ts])
            except BadInput as exc:
                raise _bad(str(exc)) from exc
            accepted += len(groups[ts])
            for symbol, row in rows.items():
                self.latest[symbol] = (ts, row)
        return accepted, skipped

    def save(self, path: Path) -> None:
        doc = {
            "online": self.online.to_dict(),
            "latest": {s: [ts.isoformat(), row] for s, (ts, row) in self.latest.items()},
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        """Continue from a saved state if it was made with the same features."""
        try:
            doc = json.loads(path.read_text())
            online = OnlineFeatures.from_dict(doc["online"])
        except FileNotFoundError:
            return False
        except (ValueError, KeyError, TypeError, BadInput) as exc:
            log.warning("ignoring the saved online-feature state %s: %s", path, exc)
            return False
        if online.features != self.online.features:
            log.warning("ignoring the saved online-feature state %s: the features changed", path)
            return False
        self.online = online
        self.latest = {
            s: (datetime.fromisoformat(ts), row) for s, (ts, row) in doc["latest"].items()
        }
        return True


NAME = "trading"
SIDES = {1: "long", -1: "short", 0: "flat"}
STATE_FILE = "online_features.json"


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
        self.explanations = Explanations(gw)

    def schemas(self, doc: DocContext) -> list[type[BaseModel]]:
        return [Bars, BarsResponse, Signal]

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]:
        return {"/v1/bars": {}, "/v1/signals/{symbol}": {}}

    def start(self) -> None:
        if self.state_file is not None:
            self.state.load(self.state_file)

    def stop(self) -> None:
        if self.state_file is not None:
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

        async def post_bars(request: Request, ctx: Ctx) -> Response:
            await gw.authorize_predict(ctx)
            require_json(ctx.headers)
            doc = parse_json(await read_body(request, ctx.headers, limit))
            if not isinstance(doc, dict) or set(doc) != {"bars"}:
                raise _bad("the body must be an object with one field, 'bars' (an array of bars)")
            bars = doc["bars"]
            if not isinstance(bars, list) or not bars:
                raise _bad("bars must be a non-empty array")
            parsed = [parse_bar(b, i) for i, b in enumerate(bars)]
            accepted, skipped = state.apply(parsed)
            symbols = sorted({s for s, _, _ in parsed})
            return ok({"accepted": accepted, "skipped": skipped, "symbols": symbols})

        async def get_signal(request: Request, ctx: Ctx) -> Response:
            override = await gw.authorize_predict(ctx)
            symbol = request.path_params["symbol"]
            explain = wants(request.query_params.get("explain"), "explain")
            latest = state.latest.get(symbol)
            if latest is None:
                raise ApiError(404, f"no bars for symbol {symbol!r} yet; POST them to /v1/bars")
            ts, row = latest
            ready = [(n, v) for n, v in row.items() if v is not None]
            rows = Rows(
                tuple(n for n, _ in ready), np.array([[v for _, v in ready]], dtype=np.float32)
            )
            try:
                scored = gw.score(
                    rows,
                    ctx,
                    route="/v1/signals/{symbol}",
                    key=gw.key(ctx, symbol),
                    override=override,
                    allow_extra=True,
                )
            except MissingFeatures as exc:
                raise ApiError(
                    409,
                    f"features {exc.missing} of {symbol} at {ts.isoformat()} are not "
                    "available yet (still warming up, or not in the gateway's feature spec)",
                    "FEATURES_NOT_READY",
                ) from exc
            p = float(scored.predictions[0])
            pos = rule.scalar(p)
            model = scored.served.model
            return ok(
                {
                    "symbol": symbol,
                    "prediction": p,
                    "position": pos,
                    "side": SIDES[pos],
                    "model": gw.model_name,
                    "version": model.version,
                    "variant": scored.served.variant,
                    "feature_timestamp": ts.isoformat(),
                    "features": dict(
                        zip(model.feature_names, scored.features[0].tolist(), strict=True)
                    ),
                    **explanations.field(scored, explain),  # ?explain=true
                }
            )

        return [
            Op(
                "POST",
                "/v1/bars",
                post_bars,
                "post_bars",
                {200: Reply("BarsResponse", "Bars applied (and any skipped)")},
                (400, 413, 415),
                {JSON: "Bars"},
                summary="Feed bars to the online features",
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
