"""One-bar-at-a-time state machines, one per per-symbol feature kind (see `definitions`).

Plain Python floats, deques and `math`: at a window of 20, one call to numpy costs more than the
whole update. Windowed statistics are recomputed over the window on every bar (`math.fsum` for
the mean, `math.dist` for the deviations: a two-pass variance) instead of kept as running sums,
so a stream of any length agrees with the batch path to rounding, with nothing to drift. Each
kernel returns its raw value (maybe inf); the caller maps non-finite values to None.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar

from tradeloop.features.definitions import ema_alpha, first_valid
from tradeloop.spec import FeatureSpec

_dist, _fsum, _log, _sqrt = math.dist, math.fsum, math.log, math.sqrt


def window_stats(buf: deque[float]) -> tuple[float, float] | None:
    """Mean and sample std (ddof=1) of a full window; None when every value is equal."""
    if max(buf) == min(buf):
        return None
    n = len(buf)
    m = _fsum(buf) / n
    # math.dist: the root of the summed squared deviations, in C with extra precision
    return m, _dist(buf, (m,) * n) / _sqrt(n - 1)


class Kernel:
    """A feature's state for one symbol. `step` takes one bar and returns the value at it."""

    __slots__ = ()
    state_slots: ClassVar[tuple[str, ...]] = ()

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        raise NotImplementedError

    def dump(self) -> dict[str, Any]:
        """The mutable state as JSON-ready values (deques become lists)."""
        out: dict[str, Any] = {}
        for name in self.state_slots:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, deque) else value
        return out

    def load(self, state: dict[str, Any]) -> None:
        """Restore what `dump` gave; raises KeyError/TypeError/ValueError on a malformed dict."""
        for name in self.state_slots:
            current, value = getattr(self, name), state[name]
            if isinstance(current, deque):
                current.clear()
                current.extend(float(x) for x in value)
            elif isinstance(current, list):
                setattr(self, name, [float(x) for x in value])
            elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
                setattr(self, name, value)
            else:
                raise TypeError(f"{name}: not a number: {value!r}")


class Returns(Kernel):
    """close[t] / close[t-w] - 1, or its log."""

    __slots__ = ("buf", "log", "w")
    state_slots = ("buf",)

    def __init__(self, w: int, log: bool) -> None:
        self.w, self.log = w, log
        self.buf: deque[float] = deque(maxlen=w + 1)

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        buf = self.buf
        buf.append(close)
        if len(buf) <= self.w:
            return None
        ratio = close / buf[0]
        if self.log:
            return _log(ratio) if ratio > 0.0 else None
        return ratio - 1.0


class Volatility(Kernel):
    """Sample std of the last w one-bar log returns."""

    __slots__ = ("buf", "prev", "w")
    state_slots = ("buf", "prev")

    def __init__(self, w: int) -> None:
        self.w = w
        self.prev: float | None = None
        self.buf: deque[float] = deque(maxlen=w)

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        prev, self.prev = self.prev, close
        if prev is None:
            return None
        ratio = close / prev
        self.buf.append(_log(ratio) if ratio > 0.0 else math.nan)
        if len(self.buf) < self.w:
            return None
        stats = window_stats(self.buf)
        return None if stats is None else stats[1]


class ZScore(Kernel):
    """(x - mean) / std over the last w closes (or volumes)."""

    __slots__ = ("buf", "volume", "w")
    state_slots = ("buf",)

    def __init__(self, w: int, volume: bool) -> None:
        self.w, self.volume = w, volume
        self.buf: deque[float] = deque(maxlen=w)

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        x = volume if self.volume else close
        buf = self.buf
        buf.append(x)
        if len(buf) < self.w:
            return None
        stats = window_stats(buf)
        if stats is None:
            return None
        return (x - stats[0]) / stats[1]


class VolumeRatio(Kernel):
    """volume / mean volume of the last w bars (this one included)."""

    __slots__ = ("buf", "w")
    state_slots = ("buf",)

    def __init__(self, w: int) -> None:
        self.w = w
        self.buf: deque[float] = deque(maxlen=w)

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        buf = self.buf
        buf.append(volume)
        if len(buf) < self.w:
            return None
        mean = _fsum(buf) / self.w
        return volume / mean if mean > 0.0 else None


class Range(Kernel):
    """(high - low) / close: stateless."""

    __slots__ = ()

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        return (high - low) / close


class Rsi(Kernel):
    """Wilder's RSI: mean of the first w gains/losses as the seed, then EWM with alpha 1/w."""

    __slots__ = ("alpha", "gain", "gains", "loss", "losses", "n", "prev", "w")
    state_slots = ("gain", "gains", "loss", "losses", "n", "prev")

    def __init__(self, w: int) -> None:
        self.w, self.alpha = w, 1.0 / w
        self.prev: float | None = None
        self.n = 0  # price changes seen
        self.gains: list[float] = []  # the first w, for the seed
        self.losses: list[float] = []
        self.gain = 0.0
        self.loss = 0.0

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        prev, self.prev = self.prev, close
        if prev is None:
            return None
        d = close - prev
        g = d if d > 0.0 else 0.0
        lo = -d if d < 0.0 else 0.0
        self.n += 1
        if self.n > self.w:
            keep = 1.0 - self.alpha
            self.gain = keep * self.gain + self.alpha * g
            self.loss = keep * self.loss + self.alpha * lo
        else:
            self.gains.append(g)
            self.losses.append(lo)
            if self.n < self.w:
                return None
            self.gain = _fsum(self.gains) / self.w
            self.loss = _fsum(self.losses) / self.w
            self.gains, self.losses = [], []
        total = self.gain + self.loss
        return 100.0 * self.gain / total if total > 0.0 else None


class Macd(Kernel):
    """(EMA_fast - EMA_slow - signal EMA of that) / close, after slow+signal-1 bars."""

    __slots__ = ("a_fast", "a_signal", "a_slow", "fast", "n", "ready", "signal", "slow")
    state_slots = ("fast", "n", "signal", "slow")

    def __init__(self, fast: int, slow: int, signal: int, ready: int) -> None:
        self.a_fast, self.a_slow, self.a_signal = (
            ema_alpha(fast),
            ema_alpha(slow),
            ema_alpha(signal),
        )
        self.ready = ready  # bars needed before the first value
        self.n = 0
        self.fast = 0.0
        self.slow = 0.0
        self.signal = 0.0

    def step(self, high: float, low: float, close: float, volume: float) -> float | None:
        if self.n == 0:
            self.fast = self.slow = close
            self.signal = 0.0  # the line starts at E_fast - E_slow = 0
        else:
            af, as_, asig = self.a_fast, self.a_slow, self.a_signal
            self.fast = (1.0 - af) * self.fast + af * close
            self.slow = (1.0 - as_) * self.slow + as_ * close
            self.signal = (1.0 - asig) * self.signal + asig * (self.fast - self.slow)
        self.n += 1
        if self.n < self.ready:
            return None
        return (self.fast - self.slow - self.signal) / close


def make_kernel(f: FeatureSpec) -> Kernel:
    """The kernel computing per-symbol feature `f` (not cs_rank: that needs every symbol)."""
    w = f.window or 0
    k = f.kind
    if k in ("returns", "log_returns"):
        return Returns(w, log=k == "log_returns")
    if k == "volatility":
        return Volatility(w)
    if k in ("zscore", "volume_zscore"):
        return ZScore(w, volume=k == "volume_zscore")
    if k == "volume_ratio":
        return VolumeRatio(w)
    if k == "range":
        return Range()
    if k == "rsi":
        return Rsi(w)
    if k == "macd":
        assert f.fast is not None and f.slow is not None and f.signal is not None
        return Macd(f.fast, f.slow, f.signal, ready=first_valid(f) + 1)
    raise ValueError(f"feature '{f.name}': {k} is not a per-symbol kind")
