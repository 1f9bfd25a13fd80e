"""Per-request facts every layer of the gateway reads (auth, the protocols, the metrics).

Its own module so that `auth` and `gateway` both depend on it rather than on each other.
"""

from __future__ import annotations

import time


class Ctx:
    """Per-request facts: headers (read once into a dict; Starlette's `Headers.get` scans the
    header list on every call), and what the metrics and response headers need."""

    __slots__ = ("expected", "headers", "request_id", "t0", "variant", "version")

    def __init__(self, headers: dict[bytes, bytes]) -> None:
        self.t0 = time.perf_counter()
        self.headers = headers
        self.request_id = ""
        self.variant = ""
        self.version = ""
        self.expected = False  # counted in the micro-batcher's arriving requests

    def header(self, name: str) -> str | None:
        """A request header by lower-case name (ASGI servers lower-case them)."""
        v = self.headers.get(name.encode())
        return None if v is None else v.decode("latin-1")
