"""The demo's paper-trading client: bars in over HTTP, one signal per account out."""

from __future__ import annotations

from typing import Any

import httpx

from tradeloop.errors import RuntimeFailure


class PaperTrader:
    """Twelve accounts, one per symbol: each hour the market's bars go in, signals come out."""

    def __init__(self, url: str, symbols: list[str]) -> None:
        self.client = httpx.Client(base_url=url, timeout=30.0)
        self.symbols = symbols
        self.requests = 0
        self.errors = 0

    def close(self) -> None:
        self.client.close()

    def bars(self, rows: list[dict[str, Any]]) -> None:
        r = self.client.post("/v1/bars", json={"bars": rows})
        self.requests += 1
        if r.status_code != 200:
            self.errors += 1
            raise RuntimeFailure(f"/v1/bars answered {r.status_code}: {r.text[:300]}")

    def signals(self) -> None:
        for i, sym in enumerate(self.symbols):
            r = self.client.get(f"/v1/signals/{sym}", headers={"x-account": f"acct-{i:02d}"})
            self.requests += 1
            if r.status_code == 409:  # features still warming up
                continue
            if r.status_code >= 400:
                self.errors += 1
