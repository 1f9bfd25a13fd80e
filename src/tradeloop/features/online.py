"""Features one bar at a time, per symbol, for serving: the same values `compute_features` gives.

A gateway feeds each symbol's bars in time order with `update` (or a whole timestamp's bars with
`update_bars`), then asks `snapshot(timestamp)` for every symbol's full vector, cross-sectional
ranks included: a rank needs all the symbols that have a bar at that timestamp, so it exists
only once they have all arrived. Bars that would look ahead or rewrite history (a timestamp
not after the symbol's last one) and impossible prices are refused with BadInput and change
nothing. `to_dict`/`from_dict` carry the whole state across a restart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tradeloop.errors import BadInput
from tradeloop.features.definitions import validate_features
from tradeloop.features.kernels import Kernel, make_kernel
from tradeloop.features.many import apply_blocks, gather
from tradeloop.features.ranks import CrossSection, percentile_ranks
from tradeloop.spec import FeatureSpec

_INF = math.inf
_STATE_VERSION = 1
_BAR_FIELDS = ("open", "high", "low", "close", "volume")
MAX_CROSS_SECTIONS = 256  # recent timestamps whose ranks `fresh` keeps up to date

FeatureRow = dict[str, float | None]


class _Symbol:
    """One symbol's kernels, its last bar time and its latest per-symbol values."""

    __slots__ = ("kernels", "last", "values")

    def __init__(self, kernels: list[Kernel]) -> None:
        self.kernels = kernels
        self.last: datetime | None = None
        self.values: list[float | None] = [None] * len(kernels)


class OnlineFeatures:
    """Incremental features for many symbols: O(window) per feature per bar, no polars."""

    def __init__(
        self, features: Sequence[FeatureSpec], symbols: Iterable[str] | None = None
    ) -> None:
        validate_features(features)
        self._features = list(features)
        self._per_symbol = [f for f in self._features if f.kind != "cs_rank"]
        self._symbol_names = [f.name for f in self._per_symbol]
        position = {name: i for i, name in enumerate(self._symbol_names)}
        # for each output column: (index into a symbol's values, is it a cross-sectional rank?)
        self._layout = [
            (position[f.of or ""], True) if f.kind == "cs_rank" else (position[f.name], False)
            for f in self._features
        ]
        # each cs_rank column: (its name, the index of the per-symbol value it ranks)
        self._ranked = [
            (f.name, idx)
            for f, (idx, is_rank) in zip(self._features, self._layout, strict=True)
            if is_rank
        ]
        self._fixed = symbols is not None
        self._states: dict[str, _Symbol] = {}
        # the cross-section each recent timestamp was last ranked in (`fresh`), oldest first
        self._cross: dict[datetime, CrossSection] = {}
        for sym in symbols or ():
            self._states[str(sym)] = self._new_symbol()

    # ------------------------------------------------------------------------------ queries

    @property
    def features(self) -> list[FeatureSpec]:
        return list(self._features)

    @property
    def names(self) -> list[str]:
        """Every feature name in spec order: the keys of a `snapshot` row."""
        return [f.name for f in self._features]

    @property
    def symbol_names(self) -> list[str]:
        """The per-symbol features (all but cs_rank): the keys `update` returns."""
        return list(self._symbol_names)

    @property
    def symbols(self) -> list[str]:
        return list(self._states)

    def last_timestamp(self, symbol: str) -> datetime | None:
        """The time of the symbol's latest accepted bar (None before its first)."""
        state = self._states.get(symbol)
        return None if state is None else state.last

    # ------------------------------------------------------------------------------ updates

    def update(
        self,
        symbol: str,
        timestamp: datetime,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> FeatureRow:
        """Take one bar; return the symbol's per-symbol features at it (no cs_rank: see snapshot)."""
        state, ts = self._check(symbol, timestamp, open, high, low, close, volume)
        values = self._apply(symbol, state, ts, high, low, close, volume)
        return dict(zip(self._symbol_names, values, strict=True))

    def update_bars(
        self, timestamp: datetime, bars: Mapping[str, Mapping[str, float]]
    ) -> dict[str, FeatureRow]:
        """Take one timestamp's bars ({symbol: {open, high, low, close, volume}}), all or none,
        and return `snapshot(timestamp)`."""
        checked = [self._checked(symbol, timestamp, bar) for symbol, bar in bars.items()]
        for symbol, state, ts, (_, high, low, close, volume) in checked:
            self._apply(symbol, state, ts, high, low, close, volume)
        return self.snapshot(timestamp)

    def update_many(
        self, groups: Mapping[datetime, Mapping[str, Mapping[str, float]]]
    ) -> dict[str, tuple[datetime, FeatureRow]]:
        """Several timestamps' bars ({timestamp: {symbol: bar}}), all or none: the same as
        `update_bars` on each timestamp in order, keeping each snapshotted symbol's last
        (timestamp, row), without building the rows that would be discarded. A rank is still
        taken over the symbols present at its own timestamp, so the values are the same.

        Each symbol's bars are checked and stepped as one block (`features.many`): with many
        bars per symbol, numpy over the block (`features.vector`) instead of a step per bar."""
        blocks = gather(self, [(_as_utc(t), groups[t]) for t in sorted(groups)])
        if blocks is None:  # something to refuse: the bar-by-bar checks name it
            return self._update_many_stepwise(groups)
        return apply_blocks(self, blocks, {_as_utc(t) for t in groups})

    def update_latest(
        self, groups: Mapping[datetime, Mapping[str, Mapping[str, float]]]
    ) -> dict[str, tuple[datetime, FeatureRow]]:
        """`update_many`, returning only the rows of the symbols in `groups`. The other
        symbols at those timestamps keep their per-symbol values, but their ranks moved: a
        holder of their rows reads them through `fresh`. A live batch of a few bars at a
        timestamp 1,000 symbols share so costs the few rows, not the 1,000."""
        blocks = gather(self, [(_as_utc(t), groups[t]) for t in sorted(groups)])
        if blocks is None:
            return self._update_many_stepwise(groups)
        return apply_blocks(self, blocks, {_as_utc(t) for t in groups}, full=False)

    def fresh(self, symbol: str, timestamp: datetime, row: FeatureRow) -> FeatureRow:
        """`row` (the symbol's row at `timestamp`, as an update gave it) with its ranks as
        `update_many` would give them now: ranked in the cross-section its timestamp was
        last ranked in. Unchanged when the symbol has moved on, or when the timestamp is
        older than the last `MAX_CROSS_SECTIONS` ranked (its ranks as last built)."""
        cross = self._cross.get(timestamp)
        state = self._states.get(symbol)
        if cross is None or state is None or state.last != timestamp:
            return row
        out = dict(row)
        for name, idx in self._ranked:
            out[name] = cross.rank(idx, state.values[idx])
        return out

    def _remember(self, ts: datetime, cross: CrossSection) -> None:
        self._cross.pop(ts, None)
        self._cross[ts] = cross
        if len(self._cross) > MAX_CROSS_SECTIONS:
            del self._cross[min(self._cross)]

    def _update_many_stepwise(
        self, groups: Mapping[datetime, Mapping[str, Mapping[str, float]]]
    ) -> dict[str, tuple[datetime, FeatureRow]]:
        """`update_many` one bar at a time: the reference the block path agrees with."""
        plan = []
        final: dict[str, datetime] = {}
        wanted = {_as_utc(t) for t in groups}
        for sym, st in self._states.items():  # earlier bars that these snapshots include
            if st.last in wanted:
                final[sym] = st.last
        for stamp in sorted(groups):
            checked = [self._checked(sym, stamp, bar) for sym, bar in groups[stamp].items()]
            ts = _as_utc(stamp)
            plan.append((ts, checked))
            final.update((sym, ts) for sym, *_ in checked)  # checked: nothing is applied yet
        finishing: dict[datetime, set[str]] = {}
        for sym, ts in final.items():
            finishing.setdefault(ts, set()).add(sym)
        out: dict[str, tuple[datetime, FeatureRow]] = {}
        for ts, checked in plan:
            for symbol, state, _, (_, high, low, close, volume) in checked:
                self._apply(symbol, self._states.get(symbol, state), ts, high, low, close, volume)
            done = finishing.get(ts)
            if done:
                out.update((sym, (ts, row)) for sym, row in self._snapshot(ts, done).items())
        return out

    def snapshot(self, timestamp: datetime) -> dict[str, FeatureRow]:
        """Full feature rows (spec order) of the symbols whose latest bar is at `timestamp`.

        Ranks are taken across exactly those symbols, as the batch path ranks the rows that
        share a timestamp; call it once every bar of the timestamp has been given.
        """
        return self._snapshot(_as_utc(timestamp), None)

    def _snapshot(self, ts: datetime, only: set[str] | None) -> dict[str, FeatureRow]:
        """`snapshot`, building rows only for the symbols in `only` (ranks over all present)."""
        present = [(sym, st.values) for sym, st in self._states.items() if st.last == ts]
        ranks = {
            idx: percentile_ranks([values[idx] for _, values in present])
            for idx, is_rank in self._layout
            if is_rank
        }
        names = self.names
        return {
            sym: {
                name: ranks[idx][row] if is_rank else values[idx]
                for name, (idx, is_rank) in zip(names, self._layout, strict=True)
            }
            for row, (sym, values) in enumerate(present)
            if only is None or sym in only
        }

    # --------------------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (floats, ints, strings, lists, None)."""
        return {
            "version": _STATE_VERSION,
            "features": [f.model_dump(mode="json") for f in self._features],
            "symbols": list(self._states) if self._fixed else None,
            "states": {
                sym: {
                    "last": None if st.last is None else st.last.isoformat(),
                    "values": list(st.values),
                    "kernels": [k.dump() for k in st.kernels],
                }
                for sym, st in self._states.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OnlineFeatures:
        """Rebuild what `to_dict` gave: it continues exactly where the original stopped."""
        try:
            if data.get("version") != _STATE_VERSION:
                raise BadInput(f"online feature state version {data.get('version')!r} unknown")
            features = [FeatureSpec.model_validate(f) for f in data["features"]]
            out = cls(features, symbols=data["symbols"])
            for sym, saved in data["states"].items():
                state = out._states.get(sym)
                if state is None:
                    if out._fixed:
                        raise BadInput(f"state for {sym!r}, which is not among the symbols")
                    state = out._states[sym] = out._new_symbol()
                kernels = saved["kernels"]
                if len(kernels) != len(state.kernels) or len(saved["values"]) != len(kernels):
                    raise BadInput(f"state for {sym!r} does not match the features")
                for kernel, dumped in zip(state.kernels, kernels, strict=True):
                    kernel.load(dumped)
                state.values = [None if v is None else float(v) for v in saved["values"]]
                state.last = None if saved["last"] is None else _as_utc(saved["last"])
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
            raise BadInput(f"malformed online feature state: {exc}") from exc
        return out

    # ------------------------------------------------------------------------------ helpers

    def _new_symbol(self) -> _Symbol:
        return _Symbol([make_kernel(f) for f in self._per_symbol])

    def _checked(
        self, symbol: str, timestamp: datetime, bar: Mapping[str, float]
    ) -> tuple[str, _Symbol | None, datetime, tuple[float, ...]]:
        try:
            values = tuple(bar[name] for name in _BAR_FIELDS)
        except (KeyError, TypeError) as exc:
            raise BadInput(f"bar for {symbol!r} needs {', '.join(_BAR_FIELDS)}") from exc
        state, ts = self._check(symbol, timestamp, *values)
        return symbol, state, ts, values

    def _apply(
        self,
        symbol: str,
        state: _Symbol | None,
        ts: datetime,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> list[float | None]:
        """Step a checked bar through the symbol's kernels; the per-symbol values at it."""
        if state is None:
            state = self._states[symbol] = self._new_symbol()
        state.last = ts
        self._cross.pop(ts, None)  # ranked again by whoever stepped it (apply_blocks) or never
        values = [k.step(high, low, close, volume) for k in state.kernels]
        for i, v in enumerate(values):
            if v is not None and not -_INF < v < _INF:
                values[i] = None  # NaN fails the comparison too
        state.values = values
        return values

    def _check(
        self,
        symbol: str,
        timestamp: datetime,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> tuple[_Symbol | None, datetime]:
        """Refuse a bar that is malformed or not after the symbol's last one; mutate nothing."""
        try:
            ok = (
                0.0 < open < _INF
                and 0.0 < high < _INF
                and 0.0 < low < _INF
                and 0.0 < close < _INF
                and 0.0 <= volume < _INF
            )
        except TypeError:
            ok = False
        if not ok:
            raise BadInput(
                f"bad bar for {symbol!r} at {timestamp}: prices must be finite and > 0, volume "
                f"finite and >= 0 (open={open!r}, high={high!r}, low={low!r}, close={close!r}, "
                f"volume={volume!r})"
            )
        state = self._states.get(symbol)
        if state is None and (self._fixed or not isinstance(symbol, str)):
            raise BadInput(f"unknown symbol {symbol!r}")
        ts = _as_utc(timestamp)
        if state is not None and state.last is not None and ts <= state.last:
            raise BadInput(
                f"bar for {symbol!r} at {ts.isoformat()} is not after its last bar at "
                f"{state.last.isoformat()}: bars must arrive in time order, once"
            )
        return state, ts


def _as_utc(timestamp: datetime | str) -> datetime:
    """A timezone-aware datetime (naive means UTC, as in the bars contract)."""
    if isinstance(timestamp, str):
        try:
            timestamp = datetime.fromisoformat(timestamp)
        except ValueError as exc:
            raise BadInput(f"not an ISO timestamp: {timestamp!r}") from exc
    if not isinstance(timestamp, datetime):
        raise BadInput(f"timestamp must be a datetime, not {type(timestamp).__name__}")
    return timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)
