"""Walk-forward and purged k-fold splits over a panel of bars.

Why: a label at bar t looks h bars ahead (close[t+h]/close[t] - 1), so a training sample whose
label window reaches into the test period has seen the test period's prices. Plain time splits
leak that through the last h training bars; these splits purge them (and, when training also
lies after a test block, embargo the bars whose features were computed from test-period prices).

Everything works on the sorted unique timestamps ("bars"): a panel of several symbols shares
timestamps, and every row of a bar goes to the same side of a split. Folds hold row indices into
the original frame, which may be in any order (the bars contract sorts by symbol first).

Conventions, in bar positions (0 .. n-1 over the unique timestamps) with h = label horizon:

- a sample at bar t has the label window (t, t+h];
- a test block [s, e] spans [s, e + h]: its samples' observation times and label windows;
- purging drops every training bar whose label window meets that span: before the block,
  t >= s - h (h bars); after it, t <= e + h - 1 (h - 1 bars);
- the embargo drops the next `embargo` bars after that, t < e + h + embargo, because their
  features (returns, rolling windows) are computed from prices inside the test span.

Walk-forward training lies wholly before its test block, so only the h bars before it are
purged and the embargo never applies there; `purged_kfold` trains on both sides of its test
blocks (for CPCV or a final "all but this block" fit) and purges and embargoes both sides.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.spec import SplitSpec

Timestamps = pl.DataFrame | pl.Series | np.ndarray


@dataclass(frozen=True, eq=False)  # numpy fields: compare folds by their describe()
class Fold:
    """One train/test split: row indices into the frame plus what they cover, for reports."""

    index: int
    train: np.ndarray  # int64 row indices into the original frame, ascending
    test: np.ndarray  # int64 row indices into the original frame, ascending
    train_bars: np.ndarray = field(repr=False)  # bar positions used for training
    test_blocks: tuple[tuple[int, int], ...]  # inclusive bar-position ranges of the test set
    horizon: int
    embargo: int
    purged: int  # bars dropped from training because their label windows meet a test span
    embargoed: int  # further bars dropped after a test block (features saw the test span)
    train_start: Any
    train_end: Any
    test_start: Any
    test_end: Any

    @property
    def test_bars(self) -> np.ndarray:
        return np.concatenate([np.arange(s, e + 1) for s, e in self.test_blocks])

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary (sizes, time ranges, purge counts) for logs and reports."""
        return {
            "fold": self.index,
            "train_rows": int(self.train.size),
            "test_rows": int(self.test.size),
            "train_bars": int(self.train_bars.size),
            "test_bars": int(sum(e - s + 1 for s, e in self.test_blocks)),
            "train_start": _iso(self.train_start),
            "train_end": _iso(self.train_end),
            "test_start": _iso(self.test_start),
            "test_end": _iso(self.test_end),
            "test_blocks": [[s, e] for s, e in self.test_blocks],
            "horizon": self.horizon,
            "embargo": self.embargo,
            "purged_bars": self.purged,
            "embargoed_bars": self.embargoed,
        }


def walk_forward(timestamps: Timestamps, split: SplitSpec, horizon: int) -> list[Fold]:
    """Walk-forward folds: `split.folds` consecutive test blocks at the end of the history.

    Expanding: train on every bar before the block; sliding: on the last `train_bars` bars
    (default `min_train_bars`). Both minus the h purged bars just before the block, so every fold
    trains on at least `min_train_bars` bars. `test_bars` defaults to
    (n - min_train_bars - h) // folds, so the folds cover the data after the first training set.
    """
    _check_horizon(horizon)
    uniq, inverse = _bars(timestamps)
    n = uniq.size
    lead = split.min_train_bars
    if split.scheme == "sliding":
        window = split.train_bars if split.train_bars is not None else split.min_train_bars
        if window < split.min_train_bars:
            raise BadInput(
                f"split.train_bars ({window}) is smaller than split.min_train_bars "
                f"({split.min_train_bars}); raise train_bars or lower min_train_bars"
            )
        lead = window
    test_bars = split.test_bars
    if test_bars is None:
        test_bars = (n - lead - horizon) // split.folds
    need = lead + horizon + split.folds * max(test_bars, 1)
    if test_bars < 1 or need > n:
        raise BadInput(
            f"not enough data for walk-forward: {split.folds} folds x "
            f"{max(test_bars, 1)} test bars after {lead} training bars and a {horizon}-bar purge "
            f"need {need} distinct timestamps, the data has {n}; lower split.folds, "
            "split.test_bars, split.min_train_bars (or train_bars), or give more history"
        )
    first = n - split.folds * test_bars
    folds = []
    for k in range(split.folds):
        s = first + k * test_bars
        e = s + test_bars - 1
        start = 0 if split.scheme == "expanding" else s - horizon - lead
        train = np.arange(start, s - horizon)
        folds.append(_make_fold(k, uniq, inverse, train, ((s, e),), horizon, 0, horizon, 0))
    return folds


def purged_kfold(
    timestamps: Timestamps,
    groups: int,
    horizon: int,
    embargo: int = 0,
    test_groups: int = 1,
) -> list[Fold]:
    """Purged (combinatorial) k-fold: train on everything but the test groups, purged both sides.

    The bars are cut into `groups` contiguous groups; each combination of `test_groups` of them
    is one fold's test set (test_groups=1: purged k-fold; more: CPCV). Training is every other
    bar minus the purged and embargoed bars around each test block (see the module docstring).
    """
    _check_horizon(horizon)
    if embargo < 0:
        raise BadInput(f"embargo must be >= 0, got {embargo}")
    if not 1 <= test_groups < groups:
        raise BadInput(
            f"purged k-fold needs 1 <= test_groups < groups, got {test_groups} of {groups}"
        )
    uniq, inverse = _bars(timestamps)
    n = uniq.size
    if n < groups:
        raise BadInput(f"purged k-fold with {groups} groups needs >= {groups} timestamps, got {n}")
    bounds = [(int(g[0]), int(g[-1])) for g in np.array_split(np.arange(n), groups)]
    folds = []
    for k, combo in enumerate(itertools.combinations(range(groups), test_groups)):
        blocks = _merge([bounds[g] for g in combo])
        keep, purged, embargoed = _train_mask(n, blocks, horizon, embargo)
        train = np.flatnonzero(keep)
        if train.size == 0:
            raise BadInput(
                f"purged k-fold: fold {k} has no training bars left after purging "
                f"({horizon}-bar horizon, {embargo}-bar embargo); use fewer groups or more data"
            )
        folds.append(
            _make_fold(k, uniq, inverse, train, blocks, horizon, embargo, purged, embargoed)
        )
    return folds


def purge_mask(
    n_bars: int, test_blocks: list[tuple[int, int]], horizon: int, embargo: int = 0
) -> np.ndarray:
    """Boolean mask over bar positions: True where a bar may be used to train.

    Test bars are False; so are the purged bars around each block and the embargoed bars after
    it. Exposed for callers that assemble their own test sets.
    """
    _check_horizon(horizon)
    return _train_mask(n_bars, _merge(test_blocks), horizon, embargo)[0]


# ------------------------------------------------------------------------------------ helpers


def _check_horizon(horizon: int) -> None:
    if horizon < 0:
        raise BadInput(f"label horizon must be >= 0 bars, got {horizon}")


def _bars(timestamps: Timestamps) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique timestamps and, for each row, the position of its bar among them."""
    if isinstance(timestamps, pl.DataFrame):
        if "timestamp" not in timestamps.columns:
            raise BadInput("splitting needs a 'timestamp' column")
        timestamps = timestamps["timestamp"]
    if isinstance(timestamps, pl.Series):
        if timestamps.null_count():
            raise BadInput("timestamps contain nulls")
        timestamps = timestamps.to_numpy()
    arr = np.asarray(timestamps)
    if arr.ndim != 1:
        raise BadInput(f"timestamps must be one-dimensional, got shape {arr.shape}")
    uniq, inverse = np.unique(arr, return_inverse=True)
    return uniq, inverse.reshape(-1)


def _merge(blocks: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort and merge adjacent or overlapping inclusive ranges."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(blocks):
        if out and s <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def _train_mask(
    n: int, blocks: tuple[tuple[int, int], ...], h: int, embargo: int
) -> tuple[np.ndarray, int, int]:
    keep = np.ones(n, dtype=bool)
    for s, e in blocks:
        keep[s : e + 1] = False
    purge = np.zeros(n, dtype=bool)
    emb = np.zeros(n, dtype=bool)
    for s, e in blocks:
        purge[max(0, s - h) : s] = True  # label window (t, t+h] reaches s
        purge[e + 1 : min(n, e + h)] = True  # label window starts inside [s, e + h]
        emb[e + h : min(n, e + h + embargo)] = True  # features computed from the test span
    purge &= keep
    emb &= keep & ~purge
    return keep & ~purge & ~emb, int(purge.sum()), int(emb.sum())


def _make_fold(
    k: int,
    uniq: np.ndarray,
    inverse: np.ndarray,
    train_bars: np.ndarray,
    blocks: tuple[tuple[int, int], ...],
    horizon: int,
    embargo: int,
    purged: int,
    embargoed: int,
) -> Fold:
    in_train = np.zeros(uniq.size, dtype=bool)
    in_train[train_bars] = True
    in_test = np.zeros(uniq.size, dtype=bool)
    for s, e in blocks:
        in_test[s : e + 1] = True
    train_bars = np.flatnonzero(in_train)
    return Fold(
        index=k,
        train=np.flatnonzero(in_train[inverse]).astype(np.int64),
        test=np.flatnonzero(in_test[inverse]).astype(np.int64),
        train_bars=train_bars,
        test_blocks=blocks,
        horizon=horizon,
        embargo=embargo,
        purged=purged,
        embargoed=embargoed,
        train_start=_scalar(uniq[train_bars[0]]) if train_bars.size else None,
        train_end=_scalar(uniq[train_bars[-1]]) if train_bars.size else None,
        test_start=_scalar(uniq[blocks[0][0]]),
        test_end=_scalar(uniq[blocks[-1][1]]),
    )


def _scalar(value: Any) -> Any:
    """numpy datetime64 to an aware UTC datetime (the bars contract is UTC); others as Python."""
    if isinstance(value, np.datetime64):
        us = value.astype("datetime64[us]").astype(np.int64)
        return datetime.fromtimestamp(0, UTC) + np.timedelta64(int(us), "us").item()
    return value.item() if isinstance(value, np.generic) else value


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
