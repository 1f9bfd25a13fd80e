"""What every stream source shares: a fetched message, and `${VAR}` expansion of the URL."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from tradeloop.errors import BadInput


@dataclass(frozen=True)
class Delivery:
    """One message as fetched: its payload, the broker's handle to ack it, and the broker's
    id for it (the JetStream stream sequence, the Redis entry id), the same on redelivery."""

    data: bytes
    handle: Any
    id: str | None = None


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_url(url: str) -> str:
    """`${VAR}` references in the URL filled from the environment (credentials stay out of git)."""

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise BadInput(f"data.stream.url refers to ${{{m.group(1)}}}, which is not set")
        return value

    return _ENV.sub(sub, url)
