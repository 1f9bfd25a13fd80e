"""`OnlineFeatures.update_many` by blocks: each symbol's bars of the batch at once.

A broker batch or a gateway's `/v1/bars` brings many bars per symbol; stepping them one by one
costs ~10 µs a bar in Python. Here the batch is regrouped by symbol, checked as arrays, and each
symbol's block goes through `vector.run_block` (numpy) when it is at least `VECTOR_MIN` bars
long (the symbols with as many bars together), or the bar-by-bar kernels otherwise. Ranks are still taken at each snapshotted timestamp
over the symbols whose latest bar was at that timestamp *then* (the block values at it, or the
values from before the batch), so the rows equal `update_bars` on each timestamp in order.
Anything to refuse makes `gather` answer None: the caller then runs the bar-by-bar path, which
refuses with the right message, and nothing has been changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np

from tradeloop.errors import BadInput
from tradeloop.features.ranks import CrossSection
from tradeloop.features.vector import run_blocks

# `online` imports this module, so the types it hands over are named here, not imported
# (tests/test_architecture.py counts TYPE_CHECKING imports as edges): an `OnlineFeatures`
# and its per-symbol `_Symbol` states, whose private parts this module steps.
OnlineFeatures = Any
_Symbol = Any
FeatureRow = dict[str, float | None]  # = online.FeatureRow

VECTOR_MIN = 16  # bars of one symbol from which numpy beats the per-bar kernels

Values = list[float | None]


@dataclass
class _Block:
    """One symbol's bars in the batch, in time order, and its per-symbol values at each."""

    times: list[datetime] = field(default_factory=list)
    rows: list[list[float]] = field(default_factory=list)
    bars: np.ndarray | None = None  # n x 5 floats when the block is long enough for numpy
    values: list[Values] = field(default_factory=list)  # per bar, from the per-bar kernels
    grid: np.ndarray | None = None  # or n x features from numpy, NaN for None

    def at(self, i: int) -> Values:
        """The per-symbol values at the block's i-th bar."""
        if self.grid is None:
            return self.values[i]
        return [None if v != v else v for v in self.grid[i].tolist()]


def gather(
    online: OnlineFeatures, stamped: Sequence[tuple[datetime, Mapping[str, Mapping[str, float]]]]
) -> dict[str, _Block] | None:
    """The batch by symbol, every bar checked; None if any bar would be refused."""
    blocks: dict[str, _Block] = {}
    try:
        for ts, bars in stamped:
            for sym, bar in bars.items():
                b = blocks.get(sym)
                if b is None:
                    b = blocks[sym] = _Block()
                elif ts <= b.times[-1]:  # the same instant under two keys
                    return None
                b.times.append(ts)
                b.rows.append([bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]])
        for sym, b in blocks.items():
            state = online._states.get(sym)
            if state is None and (online._fixed or not isinstance(sym, str)):
                return None
            if state is not None and state.last is not None and b.times[0] <= state.last:
                return None
            if len(b.rows) < VECTOR_MIN:
                for ts, row in zip(b.times, b.rows, strict=True):
                    online._check(sym, ts, *row)
                continue
            arr = np.array(b.rows)
            if arr.dtype.kind not in "fiub":  # strings, None: refused bar by bar
                return None
            if arr.dtype != np.float64:
                arr = arr.astype(np.float64)
                b.rows = arr.tolist()
            prices, volume = arr[:, :4], arr[:, 4]
            if not (
                ((prices > 0.0) & (prices < np.inf)).all()
                and ((volume >= 0.0) & (volume < np.inf)).all()
            ):
                return None
            b.bars = arr
    except (KeyError, TypeError, ValueError, BadInput):
        return None
    return blocks


def apply_blocks(
    online: OnlineFeatures, blocks: dict[str, _Block], wanted: set[datetime], *, full: bool = True
) -> dict[str, tuple[datetime, FeatureRow]]:
    """Step every block (all checked) and build the snapshotted symbols' last rows: every one
    (`full`), or only the batch's own symbols' (the others' ranks, which the batch changed,
    are read later through the cross-section it leaves, `OnlineFeatures.fresh`)."""
    states = online._states
    before = {sym: (st.last, st.values) for sym, st in states.items() if st.last in wanted}
    final = {sym: last for sym, (last, _) in before.items() if last is not None}
    by_length: dict[int, list[str]] = {}
    for sym, b in blocks.items():
        state = states.get(sym)
        if state is None:
            state = states[sym] = online._new_symbol()
        if b.bars is None:
            b.values = [
                online._apply(sym, state, ts, high, low, close, volume)
                for ts, (_, high, low, close, volume) in zip(b.times, b.rows, strict=True)
            ]
        else:
            by_length.setdefault(len(b.times), []).append(sym)
        final[sym] = b.times[-1]
    for syms in by_length.values():
        _step_together(online, [blocks[s] for s in syms], [states[s] for s in syms])
    finishing: dict[datetime, set[str]] = {}
    for sym, ts in final.items():
        if full or sym in blocks:
            finishing.setdefault(ts, set()).add(sym)
    present: dict[datetime, list[tuple[str, Values]]] = {ts: [] for ts in set(final.values())}
    for sym, b in blocks.items():
        for i, ts in enumerate(b.times):
            at = present.get(ts)
            if at is not None:
                at.append((sym, b.at(i)))
    for sym, (last, values) in before.items():
        at = present.get(last) if last is not None else None
        if at is not None:  # its bars in the batch, if any, all come after `last`
            at.append((sym, values))
    out: dict[str, tuple[datetime, FeatureRow]] = {}
    ranked = {idx for _, idx in online._ranked}
    for ts in sorted(present):
        cross = CrossSection({idx: [values[idx] for _, values in present[ts]] for idx in ranked})
        online._remember(ts, cross)
        only = finishing.get(ts)
        if only:
            out.update((sym, (ts, row)) for sym, row in _rows(online, present[ts], only, cross))
    return out


def _step_together(online: OnlineFeatures, blocks: list[_Block], states: list[_Symbol]) -> None:
    """Symbols with as many bars each: every feature once over an S x n x 5 array."""
    bars = np.stack([b.bars for b in blocks if b.bars is not None])
    grids = [
        run_blocks([st.kernels[f] for st in states], bars) for f in range(len(states[0].kernels))
    ]
    stacked = np.stack(grids, axis=2)  # S x n x features
    for b, st, grid in zip(blocks, states, stacked, strict=True):
        b.grid = grid
        st.values = b.at(len(b.times) - 1)
        st.last = b.times[-1]


def _rows(
    online: OnlineFeatures, present: list[tuple[str, Values]], only: set[str], cross: CrossSection
) -> list[tuple[str, FeatureRow]]:
    """Full rows for the symbols in `only`, ranked in the cross-section of all `present`."""
    layout, names = online._layout, online.names
    pick = itemgetter(*(idx for idx, _ in layout))
    out: list[tuple[str, FeatureRow]] = []
    for sym, values in present:
        if sym in only:
            picked = pick(values)
            full: FeatureRow = dict(
                zip(names, picked if len(names) > 1 else (picked,), strict=True)
            )
            for name, idx in online._ranked:  # the keys stay in spec order
                full[name] = cross.rank(idx, values[idx])
            out.append((sym, full))
    return out
