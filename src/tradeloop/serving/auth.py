"""Bearer tokens for the gateway, checked against the store with a short-lived cache.

A database round trip per request would cost more than the prediction, so verified (and
refused) tokens are remembered for `ttl` seconds: a revoked token stops working within that.

When the store cannot be reached, a token verified within the last `stale_limit` seconds
(`deployment.serving.token_stale_limit`, 15 minutes by default) is still honoured from the
cache, so an outage does not stop authorized predictions; a revocation made during the outage
takes effect when the store answers again. A token not in the cache (or cached longer ago)
gets 503 with the reason, never 500. A lookup taking over `lookup_timeout` seconds (a connect
that hangs) counts as the store being down. The cache holds at most `max_entries` tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from anyio import to_thread

from tradeloop.security.tokens import TokenInfo, hash_token, role_allows, verify_token
from tradeloop.serving.context import Ctx
from tradeloop.serving.error_log import ErrorLog, is_store_error, store_unavailable
from tradeloop.serving.http import ApiError
from tradeloop.store import Store

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tradeloop"'}


class Auth:
    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 5.0,
        stale_limit: float = 900.0,
        max_entries: int = 10_000,
        errors: ErrorLog | None = None,
        now: Callable[[], float] = time.monotonic,
        lookup_timeout: float = 2.0,
    ) -> None:
        self.store = store
        self.lookup_timeout = lookup_timeout
        self.ttl = ttl
        self.stale_limit = max(stale_limit, ttl)
        self.max_entries = max_entries
        self.errors = errors or ErrorLog()
        self._now = now
        self._cache: dict[str, tuple[float, TokenInfo | None]] = {}  # hash -> (verified at, info)
        self.stale_hits = 0

    async def require(self, ctx: Ctx, role: str) -> TokenInfo:
        """The caller's token if it has `role` or higher; 401 without a valid one, 403 if weak."""
        header = ctx.header("authorization")
        if not header:
            raise ApiError(
                401, f"this endpoint needs a bearer token ({role} or higher)", headers=_CHALLENGE
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Authorization must be 'Bearer <token>'", headers=_CHALLENGE)
        info = await self._lookup(token)
        if info is None:
            raise ApiError(401, "the token is unknown or revoked", headers=_CHALLENGE)
        if not role_allows(info.role, role):
            raise ApiError(
                403, f"token '{info.name}' has role {info.role}; this needs {role} or higher"
            )
        return info

    async def _lookup(self, token: str) -> TokenInfo | None:
        key = hash_token(token)
        now = self._now()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            with anyio.fail_after(self.lookup_timeout):  # a hung connect counts as down
                info = await to_thread.run_sync(
                    verify_token, self.store, token, abandon_on_cancel=True
                )
        except Exception as exc:
            if not (is_store_error(exc) or isinstance(exc, TimeoutError)):
                raise
            self.errors.report("auth", exc, "verifying a token: the store is unreachable")
            if hit is not None and now - hit[0] < self.stale_limit:
                self.stale_hits += 1
                return hit[1]
            raise store_unavailable(exc, "verifying the token") from exc
        self.errors.resolved("auth")
        if len(self._cache) >= self.max_entries and key not in self._cache:
            # refused tokens go first: a flood of made-up tokens must not evict the verified
            # ones an outage would need
            self._cache = {k: v for k, v in self._cache.items() if v[1] is not None}
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
        self._cache[key] = (now, info)
        return info
