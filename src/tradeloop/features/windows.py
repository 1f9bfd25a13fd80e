"""Exact window statistics for the rows where Polars' rolling variance is not precise enough.

Polars updates a rolling variance in O(1) per row (Welford with removal). Its relative error
grows with |mean| / std of the window: measured, it stays below ~20 eps * |mean| / std, which
is harmless for returns and volumes but reaches 1e-9 on a price that hardly moves (a quiet
hour of a 10,000-priced future, a window of 2). `compute_features` asks Polars for every row
and then recomputes, here, only the rows whose window has std < |mean| / `EXACT_ABOVE`:
two-pass, with a compensated mean, the way the online path computes every window. Typical
data has none or a few such rows; the cost is O(rows * window) vectorised numpy.
"""

from __future__ import annotations

import numpy as np

EXACT_ABOVE = 1e3  # |mean| / std beyond which a window is recomputed exactly
_CHUNK = 1 << 16


def window_mean_std(values: np.ndarray, rows: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std (ddof=1) of values[r - w + 1 .. r] for each r in `rows`.

    The mean is a Neumaier-compensated sum over w, so it is the correctly rounded mean in all
    but pathological cases: the same number `math.fsum(window) / w` gives online.
    """
    means = np.empty(rows.size)
    stds = np.empty(rows.size)
    offsets = np.arange(1 - w, 1)
    for start in range(0, rows.size, _CHUNK):
        block = values[rows[start : start + _CHUNK, None] + offsets]
        mean = _compensated_sum(block) / w
        dev = block - mean[:, None]
        means[start : start + _CHUNK] = mean
        stds[start : start + _CHUNK] = np.sqrt(np.einsum("ij,ij->i", dev, dev) / (w - 1))
    return means, stds


def _compensated_sum(block: np.ndarray) -> np.ndarray:
    """Row sums with Neumaier's compensation: exact to about eps**2 of the summands."""
    total = block[:, 0].copy()
    carry = np.zeros_like(total)
    for j in range(1, block.shape[1]):
        x = block[:, j]
        new = total + x
        carry += np.where(np.abs(total) >= np.abs(x), (total - new) + x, (x - new) + total)
        total = new
    out: np.ndarray = total + carry
    return out
