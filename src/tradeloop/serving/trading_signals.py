"""A symbol's signal from its latest feature row: what `GET /v1/signals/{symbol}` answers, and
what `POST /v1/bars?signals=true` answers for every symbol a batch fed.

Scoring a batch's symbols inside the gateway, in the request that fed them, saves the feeder
a round trip per symbol (bench/ingest.py: through a gateway, a GET per symbol kept ingest from
keeping up with 1,000 bars/s). Each symbol is still scored alone, routed by its own key and
logged under it, so canary splits by symbol and live performance per variant see exactly what
they would from the GETs.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tradeloop.serving.context import Ctx
from tradeloop.serving.http import ApiError
from tradeloop.serving.inputs import MissingFeatures, Rows

if TYPE_CHECKING:
    from tradeloop.evaluation.positions import PositionRule
    from tradeloop.serving.explain import Explanations
    from tradeloop.serving.gateway import Gateway

SIDES = {1: "long", -1: "short", 0: "flat"}


class TradingState(Protocol):
    """What this needs of `protocol_trading.TradingState` (which imports this module; the
    architecture test counts TYPE_CHECKING imports too)."""

    def row(self, symbol: str) -> tuple[datetime, dict[str, float | None]] | None: ...


ROUTE = "/v1/signals/{symbol}"


def signal(
    gw: Gateway,
    state: TradingState,
    rule: PositionRule,
    symbol: str,
    ctx: Ctx,
    override: str | None,
    explain: tuple[Explanations, bool] | None = None,
) -> dict[str, Any]:
    """The symbol's signal; ApiError 404 before its first bar, 409 while it warms up."""
    latest = state.row(symbol)
    if latest is None:
        raise ApiError(404, f"no bars for symbol {symbol!r} yet; POST them to /v1/bars")
    ts, row = latest
    ready = [(n, v) for n, v in row.items() if v is not None]
    rows = Rows(tuple(n for n, _ in ready), np.array([[v for _, v in ready]], dtype=np.float32))
    try:
        scored = gw.score(
            rows, ctx, route=ROUTE, key=gw.key(ctx, symbol), override=override, allow_extra=True
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
    out = {
        "symbol": symbol,
        "prediction": p,
        "position": pos,
        "side": SIDES[pos],
        "model": gw.model_name,
        "version": model.version,
        "variant": scored.served.variant,
        "feature_timestamp": ts.isoformat(),
        "features": dict(zip(model.feature_names, scored.features[0].tolist(), strict=True)),
    }
    if explain is not None:
        explanations, wanted = explain
        out.update(explanations.field(scored, wanted))  # ?explain=true
    return out


def signals(
    gw: Gateway,
    state: TradingState,
    rule: PositionRule,
    symbols: list[str],
    ctx: Ctx,
    override: str | None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Signals of `symbols`, and for those without one (warming up) why not."""
    out: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    for symbol in symbols:
        try:
            out.append(signal(gw, state, rule, symbol, ctx, override))
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise
            missing.append({"symbol": symbol, "reason": exc.message})
    return out, missing
