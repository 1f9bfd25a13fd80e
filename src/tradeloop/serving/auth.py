"""Bearer tokens for the gateway, checked against the store with a short-lived cache.

A database round trip per request would cost more than the prediction, so verified (and
refused) tokens are remembered for `ttl` seconds: a revoked token stops working within that.
"""

from __future__ import annotations

import time

from anyio import to_thread

from tradeloop.security.tokens import TokenInfo, hash_token, role_allows, verify_token
from tradeloop.serving.context import Ctx
from tradeloop.serving.http import ApiError
from tradeloop.store import Store

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tradeloop"'}


class Auth:
    def __init__(self, store: Store, *, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, TokenInfo | None]] = {}

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
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = await to_thread.run_sync(verify_token, self.store, token)
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, info)
        return info
