"""Adaptive micro-batching: concurrent small requests for one model version share one run.

At concurrency 64, single-row requests each pay onnxruntime's fixed cost per `run` (input
binding, output allocation, the Python call) for one row. `serving.batching` coalesces the
rows of requests that are waiting at the same moment into one run and hands each request its
own slice back.

When a batch is flushed (adaptive, so a lone request does not wait `max_delay` for company):
- it holds `max_batch` rows; or
- no other prediction request is on its way: every request the gateway has accepted on a
  prediction route has joined a batch or left (the check runs after the tasks already ready on
  the event loop have had their turn, so requests that arrived in the same poll join); or
- `max_delay` has passed since the batch was opened.
(`flush: deadline` keeps only the first and the last rule.)

A batch is keyed by the `LoadedModel` object, so it never mixes versions or variants: a hot
swap mid-batch only means the next request opens a batch of the new model. The run is inline
on the event loop: for ≤ 64 rows of a small graph it takes tens of microseconds, less than a
thread hop (see `gateway.off_loop`). If the batched run raises, each request is run alone, so
errors stay per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from tradeloop.serving.runtime import LoadedModel
from tradeloop.spec import BatchingSpec


class _Batch:
    __slots__ = ("deadline", "futures", "model", "parts", "rows")

    def __init__(self, model: LoadedModel, deadline: float) -> None:
        self.model = model
        self.deadline = deadline
        self.parts: list[np.ndarray] = []
        self.futures: list[asyncio.Future[np.ndarray]] = []
        self.rows = 0


class MicroBatcher:
    """One per gateway; used from the event loop only (no locks)."""

    def __init__(self, spec: BatchingSpec, observe: Callable[[float], None]) -> None:
        self.max_batch = spec.max_batch
        self.max_delay = spec.max_delay.total_seconds()
        self.idle = spec.flush == "idle"
        self._observe = observe  # the batch-size histogram
        self._open: dict[int, _Batch] = {}  # id(model) -> its open batch (holds the model)
        self.arriving = 0  # prediction requests accepted that have not joined a batch

    def expect(self) -> None:
        """A prediction request was accepted: a batch may wait for it."""
        self.arriving += 1

    def gone(self) -> None:
        """An expected request left without joining (an error, another protocol's path)."""
        self.arriving -= 1

    async def predict(self, model: LoadedModel, x: np.ndarray, expected: bool) -> np.ndarray:
        """`model.predict(x)`, run together with other requests' rows for the same model."""
        if expected:
            self.arriving -= 1
        n = len(x)
        if n >= self.max_batch:
            self._observe(1)
            return model.predict(x)
        loop = asyncio.get_running_loop()
        key = id(model)
        batch = self._open.get(key)
        if batch is not None and batch.rows + n > self.max_batch:
            self._flush(key, batch)
            batch = None
        if batch is None:
            batch = _Batch(model, time.perf_counter() + self.max_delay)
            self._open[key] = batch
            if self.idle:
                loop.call_soon(self._check, key, batch)
            else:
                loop.call_later(self.max_delay, self._check, key, batch)
        fut: asyncio.Future[np.ndarray] = loop.create_future()
        batch.parts.append(x)
        batch.futures.append(fut)
        batch.rows += n
        if batch.rows >= self.max_batch:
            self._flush(key, batch)
        return await fut

    def _check(self, key: int, batch: _Batch) -> None:
        if self._open.get(key) is not batch:
            return  # flushed already (full)
        if not self.idle or self.arriving <= 0 or time.perf_counter() >= batch.deadline:
            self._flush(key, batch)
        else:  # more requests are on their way: look again after the next I/O poll
            asyncio.get_running_loop().call_soon(self._check, key, batch)

    def _flush(self, key: int, batch: _Batch) -> None:
        del self._open[key]
        self._observe(len(batch.futures))
        if len(batch.parts) == 1:
            _settle(batch.futures[0], batch.model, batch.parts[0])
            return
        try:
            y = batch.model.predict(np.concatenate(batch.parts))
        except Exception:  # one request's rows broke the run: each runs alone, errs alone
            for fut, x in zip(batch.futures, batch.parts, strict=True):
                _settle(fut, batch.model, x)
            return
        start = 0
        for fut, x in zip(batch.futures, batch.parts, strict=True):
            end = start + len(x)
            if not fut.done():
                fut.set_result(y[start:end])
            start = end


def _settle(fut: asyncio.Future[np.ndarray], model: LoadedModel, x: np.ndarray) -> None:
    if fut.done():  # its request was cancelled (client gone)
        return
    try:
        fut.set_result(model.predict(x))
    except Exception as exc:
        fut.set_exception(exc)
