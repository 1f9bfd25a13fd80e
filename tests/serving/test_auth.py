"""The token cache: fresh for `ttl`, honoured while the store is down up to `stale_limit`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.security.tokens import create_token, hash_token
from tradeloop.serving.auth import Auth
from tradeloop.serving.context import Ctx
from tradeloop.serving.http import ApiError
from tradeloop.store import Store


def ctx(token: str) -> Ctx:
    return Ctx({b"authorization": f"Bearer {token}".encode()})


def test_a_verified_token_outlives_an_outage_up_to_the_stale_limit(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    store = Store.open(f"sqlite:///{db}", SimulatedClock(datetime(2024, 1, 1, tzinfo=UTC)))
    plain, info = create_token(store, "p", "predictor")
    t = [0.0]
    auth = Auth(store, ttl=5.0, stale_limit=60.0, now=lambda: t[0])
    assert asyncio.run(auth.require(ctx(plain), "predictor")) == info
    # the store goes away: its file moves and pooled connections drop
    store.engine.dispose()
    db.rename(tmp_path / "away.sqlite")
    t[0] = 30.0  # past ttl, within the stale limit: still honoured
    assert asyncio.run(auth.require(ctx(plain), "predictor")) == info
    assert auth.stale_hits == 1
    t[0] = 61.0  # past the stale limit: the store must answer, and cannot
    with pytest.raises(ApiError) as err:
        asyncio.run(auth.require(ctx(plain), "predictor"))
    assert err.value.status == 503 and "store is unreachable" in err.value.message
    store.close()


def test_a_store_that_hangs_counts_as_down() -> None:
    """A listener that accepts and never answers: the connect hangs, the lookup gives up."""
    import socket

    from sqlalchemy import create_engine

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
    store = Store(engine, SimulatedClock(datetime(2024, 1, 1, tzinfo=UTC)))
    auth = Auth(store, lookup_timeout=0.5)
    try:
        with pytest.raises(ApiError) as err:
            asyncio.run(auth.require(ctx("tl_anything"), "predictor"))
        assert err.value.status == 503 and "TimeoutError" in err.value.message
    finally:
        silent.close()
        engine.dispose()


def test_made_up_tokens_do_not_evict_verified_ones(tmp_path: Path) -> None:
    store = Store.open(
        f"sqlite:///{tmp_path / 'db.sqlite'}", SimulatedClock(datetime(2024, 1, 1, tzinfo=UTC))
    )
    plain, info = create_token(store, "p", "predictor")
    auth = Auth(store, max_entries=10)
    asyncio.run(auth.require(ctx(plain), "predictor"))
    for i in range(50):  # refused, and cached as refused
        with pytest.raises(ApiError):
            asyncio.run(auth.require(ctx(f"tl_made_up_{i}"), "predictor"))
    assert len(auth._cache) <= 10
    assert auth._cache[hash_token(plain)][1] == info
    store.close()
