"""Blocks of bars through the kernels with numpy: `OnlineFeatures.update_many`'s path when a
batch brings each symbol several bars (a broker's backlog, a gateway catching up). The symbols
with the same number of bars in the batch go together, as one S x n array per feature.

A kernel that is not warm yet (its window not full, its RSI not seeded) steps bar by bar through
its block; a warm one is computed as arrays from its state, which is then left exactly
as the bar-by-bar steps would leave it, so the two paths can alternate freely. The EWMs (RSI,
MACD) are recursions, stepped bar by bar across all the symbols at once with the same
multiply-adds in the same order, so they give the same bits (scipy's lfilter would too, but
importing scipy.signal costs over a second, on the hot path); windowed means and deviations are computed per
window (a compensated mean, then two-pass), which agrees with `kernels`' `math.fsum` to
rounding. Values are float arrays with NaN where a kernel gives None or a non-finite value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tradeloop.features.kernels import (
    Kernel,
    Macd,
    Range,
    Returns,
    Rsi,
    Volatility,
    VolumeRatio,
    ZScore,
)

Grid = np.ndarray  # float64, symbols x bars
_EWM_NUMPY_ROWS = 16  # symbols from which a numpy step per bar beats a Python loop per symbol


def run_blocks(kernels: Sequence[Kernel], bars: np.ndarray) -> Grid:
    """The values of one feature for S symbols over n bars each (`bars`: S x n x (open, high,
    low, close, volume); `kernels`: that feature's kernel of each symbol, one type), advancing
    every kernel's state past the block. A kernel still warming up steps bar by bar."""
    out = np.full(bars.shape[:2], np.nan)
    warm = _WARM[type(kernels[0])]
    ready = [i for i, k in enumerate(kernels) if warm(k)]
    for i, k in enumerate(kernels):
        if not warm(k):
            out[i] = [_none_nan(k.step(h, lo, c, v)) for _, h, lo, c, v in bars[i].tolist()]
    if ready:
        mine = bars if len(ready) == len(kernels) else bars[ready]
        out[ready] = _VECTOR[type(kernels[0])]([kernels[i] for i in ready], mine)
    out[~np.isfinite(out)] = np.nan
    return out


def _none_nan(v: float | None) -> float:
    return np.nan if v is None else v


def _buffers(kernels: Sequence[Any], attr: str = "buf") -> np.ndarray:
    """The kernels' (full) windows as an S x w array."""
    return np.array([list(getattr(k, attr)) for k in kernels], dtype=np.float64)


def _extend(kernels: Sequence[Any], tail: np.ndarray) -> None:
    """Append each symbol's last values (S x m, Python floats) to its window."""
    for k, values in zip(kernels, tail.tolist(), strict=True):
        k.buf.extend(values)


def _windows(x: np.ndarray, w: int, n: int) -> list[np.ndarray]:
    """x (S x (w + n)) as w slices S x n: slice j holds element j of each window ending at one
    of the n new values (the first window, the state before the block, is left out)."""
    return [x[:, j + 1 : j + 1 + n] for j in range(w)]


def _sum(parts: list[np.ndarray]) -> np.ndarray:
    total = parts[0].copy()
    for p in parts[1:]:
        total += p
    return total


def _window_mean_std(x: np.ndarray, w: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window of w ending at each new value: mean, sample std and whether it has spread
    (not every value equal, tested exactly by counting changes)."""
    parts = _windows(x, w, n)
    mean = _sum(parts) / w
    mean += _sum([p - mean for p in parts]) / w  # one correction: ~the rounded mean
    dev = [p - mean for p in parts]
    std = np.sqrt(_sum([d * d for d in dev]) / (w - 1))
    changes = np.zeros(x.shape, dtype=np.int64)
    changes[:, 1:] = np.cumsum(x[:, 1:] != x[:, :-1], axis=1)
    # changes inside the window ending at p (elements p-w+1..p): count[p] - count[p-w+1]
    spread = changes[:, w:] - changes[:, 1 : 1 + n] > 0
    return mean, std, spread


def _ewm(alpha: float, x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """y[t] = (1 - alpha) * y[t-1] + alpha * x[t] along each row from y[-1] = start, with the
    kernels' very operations (so the same bits): a recursion, so a loop over time, across the
    symbols with numpy when they are many, else over Python floats row by row."""
    keep = 1.0 - alpha
    rows, n = x.shape
    out = np.empty_like(x)
    if rows >= _EWM_NUMPY_ROWS:
        y = start.astype(np.float64)
        for t in range(n):
            y = keep * y + alpha * x[:, t]
            out[:, t] = y
        return out
    for i, (xs, y0) in enumerate(zip(x.tolist(), start.tolist(), strict=True)):
        ys, y = [], y0
        for v in xs:
            y = keep * y + alpha * v
            ys.append(y)
        out[i] = ys
    return out


def _log_ratio(ratio: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ratio > 0.0, np.log(np.where(ratio > 0.0, ratio, 1.0)), np.nan)


def _returns(ks: Sequence[Returns], bars: np.ndarray) -> Grid:
    w, close = ks[0].w, bars[:, :, 3]
    n = close.shape[1]
    x = np.concatenate([_buffers(ks), close], axis=1)
    ratio = x[:, w + 1 :] / x[:, 1 : 1 + n]
    _extend(ks, close[:, -(w + 1) :])
    return _log_ratio(ratio) if ks[0].log else ratio - 1.0


def _volatility(ks: Sequence[Volatility], bars: np.ndarray) -> Grid:
    w, close = ks[0].w, bars[:, :, 3]
    n = close.shape[1]
    prev = np.concatenate([np.array([[k.prev] for k in ks], dtype=np.float64), close], axis=1)
    r = _log_ratio(close / prev[:, :-1])
    _, std, spread = _window_mean_std(np.concatenate([_buffers(ks), r], axis=1), w, n)
    for k, c in zip(ks, close[:, -1].tolist(), strict=True):
        k.prev = c
    _extend(ks, r[:, -w:])
    return np.where(spread, std, np.nan)


def _zscore(ks: Sequence[ZScore], bars: np.ndarray) -> Grid:
    w, src = ks[0].w, bars[:, :, 4 if ks[0].volume else 3]
    n = src.shape[1]
    mean, std, spread = _window_mean_std(np.concatenate([_buffers(ks), src], axis=1), w, n)
    _extend(ks, src[:, -w:])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread, (src - mean) / std, np.nan)


def _volume_ratio(ks: Sequence[VolumeRatio], bars: np.ndarray) -> Grid:
    w, vol = ks[0].w, bars[:, :, 4]
    n = vol.shape[1]
    mean = _sum(_windows(np.concatenate([_buffers(ks), vol], axis=1), w, n)) / w
    _extend(ks, vol[:, -w:])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0.0, vol / mean, np.nan)


def _range(ks: Sequence[Range], bars: np.ndarray) -> Grid:
    out: np.ndarray = (bars[:, :, 1] - bars[:, :, 2]) / bars[:, :, 3]
    return out


def _rsi(ks: Sequence[Rsi], bars: np.ndarray) -> Grid:
    close, alpha = bars[:, :, 3], ks[0].alpha
    prev = np.array([[k.prev] for k in ks], dtype=np.float64)
    d = close - np.concatenate([prev, close[:, :-1]], axis=1)
    gain = _ewm(alpha, np.where(d > 0.0, d, 0.0), np.array([k.gain for k in ks]))
    loss = _ewm(alpha, np.where(d < 0.0, -d, 0.0), np.array([k.loss for k in ks]))
    ends = zip(close[:, -1].tolist(), gain[:, -1].tolist(), loss[:, -1].tolist(), strict=True)
    for k, (c, g, lo) in zip(ks, ends, strict=True):
        k.prev, k.gain, k.loss, k.n = c, g, lo, k.n + close.shape[1]
    total = gain + loss
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0.0, 100.0 * gain / total, np.nan)


def _macd(ks: Sequence[Macd], bars: np.ndarray) -> Grid:
    close, k0 = bars[:, :, 3], ks[0]
    fast = _ewm(k0.a_fast, close, np.array([k.fast for k in ks]))
    slow = _ewm(k0.a_slow, close, np.array([k.slow for k in ks]))
    signal = _ewm(k0.a_signal, fast - slow, np.array([k.signal for k in ks]))
    ends = zip(fast[:, -1].tolist(), slow[:, -1].tolist(), signal[:, -1].tolist(), strict=True)
    for k, (f, s, sig) in zip(ks, ends, strict=True):
        k.fast, k.slow, k.signal, k.n = f, s, sig, k.n + close.shape[1]
    out: np.ndarray = (fast - slow - signal) / close
    return out


# When a kernel's next values depend on its state only through arrays of a fixed shape.
_WARM: dict[type[Kernel], Callable[[Any], bool]] = {
    Returns: lambda k: len(k.buf) == k.w + 1,
    Volatility: lambda k: k.prev is not None and len(k.buf) == k.w,
    ZScore: lambda k: len(k.buf) == k.w,
    VolumeRatio: lambda k: len(k.buf) == k.w,
    Range: lambda k: True,
    Rsi: lambda k: k.prev is not None and k.n >= k.w,
    Macd: lambda k: k.n >= max(k.ready, 1),
}
_VECTOR: dict[type[Kernel], Callable[[Any, np.ndarray], Grid]] = {
    Returns: _returns,
    Volatility: _volatility,
    ZScore: _zscore,
    VolumeRatio: _volume_ratio,
    Range: _range,
    Rsi: _rsi,
    Macd: _macd,
}
