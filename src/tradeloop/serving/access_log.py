"""The gateway's access log: one structured line per request, all of them, a sample, or none.

`deployment.serving.access_log` chooses: `off` (the default: the request metrics cover rates
and latency), `full`, or `sampled` (`access_log_sample` of requests; errors are always
logged, since the rare failing request is the one an incident needs). Lines go to the
`tradeloop.access` logger with the fields as attributes, so the JSON formatter writes them as
keys (route, status, duration_ms, pipeline, version, variant, request_id, and the trace ids).
"""

from __future__ import annotations

import logging
import random

from tradeloop.spec import ServingSpec

__all__ = ["AccessLog"]

log = logging.getLogger("tradeloop.access")


class AccessLog:
    def __init__(self, serving: ServingSpec, rng: random.Random | None = None) -> None:
        self.mode = serving.access_log
        self.rate = serving.access_log_sample
        self._random = (rng or random.Random()).random

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def record(
        self,
        route: str,
        status: int,
        seconds: float,
        *,
        pipeline: str,
        version: str,
        variant: str,
        request_id: str,
    ) -> None:
        if self.mode == "off":
            return
        if self.mode == "sampled" and status < 500 and self._random() >= self.rate:
            return
        log.info(
            "%s %d %.3f ms",
            route,
            status,
            seconds * 1000.0,
            extra={
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000.0, 4),
                "pipeline": pipeline,
                "version": version or None,
                "variant": variant or None,
                "request_id": request_id,
            },
        )
