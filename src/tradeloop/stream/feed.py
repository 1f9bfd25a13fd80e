"""What ingest does with accepted bars beyond the store: feed every gateway's online features
through its `POST /v1/bars`, and publish each new signal for trading clients.

The gateway's own endpoint is the one path into online features, so a bar from the broker and
a bar pushed over HTTP are treated alike (the gateway skips a bar not after the symbol's last,
which makes a resend after a failure safe). A gateway that is down keeps a bounded backlog
here and gets it when it answers again; a gateway that restarts continues from its saved state.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

import httpx
import orjson

from tradeloop.data.bar_rules import Bar

log = logging.getLogger(__name__)

MAX_BACKLOG = 100_000


class BarSink(Protocol):
    """Where accepted bars go after the store: a gateway (or, in bench/ingest.py, features
    updated in-process)."""

    async def feed(self, bars: list[Bar]) -> bool: ...

    async def signal(self, symbol: str) -> dict[str, Any] | None: ...


class GatewayFeed:
    """Feeds one gateway; `signal()` gives the latest signal of each symbol it just fed.

    The feed asks for the signals in the same request (`POST /v1/bars?signals=true`, scored in
    the gateway), so a batch costs one round trip, not one more per symbol; a gateway that
    answers without them (a token that may feed but not predict, an older gateway) is asked
    per symbol (`GET /v1/signals/<symbol>`) from then on."""

    def __init__(self, url: str, token: str | None, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.headers = {"content-type": "application/json"}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        self.client = client
        self.backlog: deque[Bar] = deque(maxlen=MAX_BACKLOG)
        self.failures = 0
        self.inline_signals = True  # ask for the signals with the bars
        self._signals: dict[str, dict[str, Any]] = {}  # from the last POST

    async def feed(self, bars: list[Bar]) -> bool:
        """Send the backlog plus `bars`; False (bars kept for next time) if the gateway failed."""
        self.backlog.extend(bars)
        if not self.backlog:
            return True
        pending = list(self.backlog)
        body = orjson.dumps({"bars": [b.to_json() for b in pending]})
        self._signals = {}
        try:
            r = await self._post(body)
        except httpx.HTTPError as exc:
            self.failures += 1
            log.warning("gateway %s unreachable, %d bars held: %s", self.url, len(pending), exc)
            return False
        if r.status_code >= 500:
            self.failures += 1
            log.warning(
                "gateway %s answered %d, %d bars held", self.url, r.status_code, len(pending)
            )
            return False
        if r.status_code >= 400:  # the gateway refused the batch: holding it would block forever
            log.error("gateway %s refused %d bars: %s", self.url, len(pending), r.text[:500])
        elif self.inline_signals:
            got = r.json().get("signals")
            if isinstance(got, list):
                self._signals = {s["symbol"]: s for s in got}
            else:
                self.inline_signals = False
        self.backlog.clear()
        return True

    async def _post(self, body: bytes) -> httpx.Response:
        """The bars, with their signals asked for while the gateway lets this token have them."""
        url = f"{self.url}/v1/bars"
        if self.inline_signals:
            r = await self.client.post(
                url, params={"signals": "true"}, content=body, headers=self.headers
            )
            if r.status_code != 403:
                return r
            self.inline_signals = False  # may feed, not predict: nothing was applied
        return await self.client.post(url, content=body, headers=self.headers)

    async def signal(self, symbol: str) -> dict[str, Any] | None:
        if self.inline_signals:
            return self._signals.get(symbol)  # None: not ready yet (the gateway said why)
        try:
            r = await self.client.get(f"{self.url}/v1/signals/{symbol}", headers=self.headers)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None


class SignalPublisher:
    """Publishes `{prefix}.{pipeline}.{symbol}` with prediction, position, version and variant."""

    def __init__(self, prefix: str, pipeline: str) -> None:
        self.prefix = prefix
        self.pipeline = pipeline

    def subject(self, symbol: str) -> str:
        return f"{self.prefix}.{self.pipeline}.{symbol}"

    @staticmethod
    def payload(pipeline: str, sig: dict[str, Any]) -> bytes:
        keep = ("symbol", "prediction", "position", "side", "version", "variant")
        doc = {k: sig.get(k) for k in keep}
        doc["pipeline"] = pipeline
        doc["timestamp"] = sig.get("feature_timestamp")
        return orjson.dumps(doc)
