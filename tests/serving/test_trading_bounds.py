"""Trading endpoint bounds: future bars, universe and symbol cap, batch and body size, the
feeder role, and feature updates off the event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.security.tokens import create_token
from tradeloop.spec import ServingSpec, Spec
from tradeloop.store import Store

SPEC = Spec(name="t")
FEATURES = ["ret_1", "ret_5", "vol_20"]
ROW = {"dataframe_split": {"columns": FEATURES, "data": [[0.01, 0.02, 0.015]]}}
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)  # the fixtures' clock is at 09:30


def bar(symbol: str, ts: datetime | str, close: float = 100.0) -> dict[str, Any]:
    stamp = ts if isinstance(ts, str) else ts.isoformat()
    return {
        "symbol": symbol,
        "timestamp": stamp,
        "open": close,
        "high": close + 1,
        "low": close - 1,
        "close": close,
        "volume": 1000.0,
    }


@pytest.fixture
def trading(make_app: Callable[..., Any], deployer: Callable[..., None]) -> Callable[..., Any]:
    deployer(("champion", "1", "live", 100))
    return lambda **serving: make_app(features=SPEC.features, serving=ServingSpec(**serving))


def test_a_bar_from_far_future_is_refused_and_the_next_real_bar_is_accepted(
    trading: Callable[..., Any], live: Any, clock: SimulatedClock
) -> None:
    url = live(trading()).url
    assert httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", T0)]}).json()["accepted"] == 1
    r = httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", "9999-12-31T00:00:00+00:00")]})
    assert r.status_code == 400
    message = r.json()["message"]
    assert "bars[0]" in message and "AAA" in message and "9999-12-31" in message
    assert "future" in message
    # nothing of it was kept: the symbol's next real bar goes in
    clock.advance(timedelta(hours=1))
    r = httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", T0 + timedelta(hours=1))]})
    assert r.status_code == 200 and r.json() == {"accepted": 1, "skipped": [], "symbols": ["AAA"]}
    # within the tolerance (5 minutes by default) a bar slightly ahead of the clock is fine
    ahead = clock.now() + timedelta(minutes=4)
    assert httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", ahead)]}).status_code == 200
    # a bad bar anywhere refuses the whole batch, before any of it is applied
    batch = [bar("BBB", T0), bar("CCC", clock.now() + timedelta(days=1))]
    r = httpx.post(url + "/v1/bars", json={"bars": batch})
    assert r.status_code == 400 and "bars[1] (CCC" in r.json()["message"]
    assert httpx.post(url + "/v1/bars", json={"bars": [bar("BBB", T0)]}).json()["accepted"] == 1


def test_symbols_are_limited_to_the_universe_or_capped(
    trading: Callable[..., Any], live: Any
) -> None:
    url = live(trading(symbols=["AAA", "BBB"])).url
    r = httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", T0), bar("ZZZ", T0)]})
    assert r.status_code == 400 and "'ZZZ' is not in the pipeline's universe" in r.text
    capped = live(trading(max_symbols=2)).url
    assert httpx.post(capped + "/v1/bars", json={"bars": [bar("A1", T0)]}).status_code == 200
    r = httpx.post(capped + "/v1/bars", json={"bars": [bar("A2", T0), bar("A3", T0)]})
    assert r.status_code == 400
    assert "first 'A2'" in r.json()["message"] and "max_symbols" in r.json()["message"]
    r = httpx.post(capped + "/v1/bars", json={"bars": [bar("A2", T0)]})
    assert r.status_code == 200  # two symbols is the limit, not over it


def test_batch_and_body_size_are_limited(trading: Callable[..., Any], live: Any) -> None:
    url = live(trading(max_bars=3, max_body_bytes=4096)).url
    four = [bar(s, T0) for s in ("A", "B", "C", "D")]
    r = httpx.post(url + "/v1/bars", json={"bars": four})
    assert r.status_code == 413 and "4 bars" in r.json()["message"] and "max_bars" in r.text
    big = [bar(f"S{i}", T0) for i in range(3)] + [{"pad": "x" * 5000}]
    r = httpx.post(url + "/v1/bars", json={"bars": big})
    assert r.status_code == 413 and "4096" in r.json()["message"]


def test_bars_can_require_a_feeder_role_apart_from_predictors(
    trading: Callable[..., Any], live: Any, store: Store
) -> None:
    url = live(trading(require_token=True, bars_role="feeder")).url
    token = {
        r: {"Authorization": "Bearer " + create_token(store, r, r)[0]}
        for r in ("feeder", "predictor", "operator")
    }
    body = {"bars": [bar("AAA", T0)]}
    assert httpx.post(url + "/v1/bars", json=body).status_code == 401
    r = httpx.post(url + "/v1/bars", json=body, headers=token["predictor"])
    assert r.status_code == 403 and "needs feeder" in r.json()["message"]
    assert httpx.post(url + "/v1/bars", json=body, headers=token["feeder"]).status_code == 200
    body = {"bars": [bar("BBB", T0)]}
    assert httpx.post(url + "/v1/bars", json=body, headers=token["operator"]).status_code == 200
    # a feeder feeds; it does not predict
    r = httpx.post(url + "/invocations", json=ROW, headers=token["feeder"])
    assert r.status_code == 403
    r = httpx.post(url + "/invocations", json=ROW, headers=token["predictor"])
    assert r.status_code == 200
    # nor may it have the signals with its bars: refused before anything is applied
    later = {"bars": [bar("AAA", T0 + timedelta(minutes=10))]}
    r = httpx.post(url + "/v1/bars?signals=true", json=later, headers=token["feeder"])
    assert r.status_code == 403
    r = httpx.post(url + "/v1/bars", json=later, headers=token["feeder"])
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1  # not skipped: the refused request applied nothing


def test_a_batch_being_applied_does_not_hold_up_invocations(
    trading: Callable[..., Any], live: Any
) -> None:
    app = trading()
    url = live(app).url
    protocol = app.state.protocols["trading"]
    batch = {"bars": [bar(f"S{i:04d}", T0) for i in range(2000)]}
    answer: dict[str, httpx.Response] = {}
    with protocol.lock:  # the batch cannot finish until we let it
        feeder = threading.Thread(
            target=lambda: answer.setdefault("bars", httpx.post(url + "/v1/bars", json=batch))
        )
        feeder.start()
        for _ in range(2000):
            if protocol.waiting:
                break
            threading.Event().wait(0.005)
        assert protocol.waiting == 1
        # were the update on the event loop, the loop would be stuck on the lock and this
        # request would time out
        r = httpx.post(url + "/invocations", json=ROW, timeout=10)
        assert r.status_code == 200
        assert "bars" not in answer
    feeder.join(30)
    assert answer["bars"].status_code == 200 and answer["bars"].json()["accepted"] == 2000


def test_a_future_bar_saved_before_the_bounds_is_dropped_at_start(
    trading: Callable[..., Any], live: Any, tmp_path: Any
) -> None:
    from tradeloop.serving.protocol_trading import STATE_FILE, TradingState, parse_bar

    old = TradingState(list(SPEC.features))  # as the unbounded gateway kept it
    old.apply([parse_bar(bar("AAA", "9999-12-31T00:00:00+00:00"), 0), parse_bar(bar("BBB", T0), 1)])
    (tmp_path / "state").mkdir(exist_ok=True)
    old.save(tmp_path / "state" / STATE_FILE)
    app = trading()
    url = live(app).url
    assert app.state.protocols["trading"].state.online.symbols == ["BBB"]
    r = httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", T0)]})
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_the_online_state_is_saved_while_bars_come_in(
    trading: Callable[..., Any], live: Any, tmp_path: Any
) -> None:
    """So a SIGKILL loses at most `save_every` seconds of it, not everything since start."""
    import json

    from tradeloop.serving.protocol_trading import STATE_FILE

    app = trading()
    url = live(app).url
    app.state.protocols["trading"].save_every = 0.0
    assert httpx.post(url + "/v1/bars", json={"bars": [bar("AAA", T0)]}).status_code == 200
    saved = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert list(saved["online"]["states"]) == ["AAA"]


def test_ingest_feeds_a_gateway_that_will_not_give_its_token_signals(
    trading: Callable[..., Any], live: Any, store: Store
) -> None:
    """A feeder token: the feed's `?signals=true` is refused (403, nothing applied), so it
    feeds without and asks per symbol from then on; the bars arrive once."""
    import asyncio

    from tradeloop.data.bar_rules import Bar
    from tradeloop.stream.feed import GatewayFeed

    url = live(trading(require_token=True, bars_role="feeder")).url
    token = create_token(store, "feeder", "feeder")[0]

    async def go() -> tuple[bool, dict[str, Any] | None, bool]:
        async with httpx.AsyncClient(timeout=10) as client:
            feed = GatewayFeed(url, token, client)
            fed = await feed.feed([Bar("AAA", T0, 10.0, 11.0, 9.0, 10.5, 5.0)])
            return fed, await feed.signal("AAA"), feed.inline_signals

    fed, sig, inline = asyncio.run(go())
    assert fed and sig is None and not inline
    again = httpx.post(
        url + "/v1/bars",
        json={"bars": [bar("AAA", T0)]},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert again["accepted"] == 0 and len(again["skipped"]) == 1  # it had the bar, once
