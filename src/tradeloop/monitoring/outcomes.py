"""Delayed outcomes: which live predictions can be graded at a given time, and against what.

A prediction made on bar t's features with horizon h is graded by its forward return
close[t+h] / close[t] - 1 (the label the model was trained on; t+h is the h-th later bar of the
symbol, counted in bars as the labels are). That outcome exists only once bar t+h is known, so
every function here takes the evaluation time `as_of` (a clock time) and never grades a
prediction whose t+h bar is not yet known at `as_of` — it is *pending* instead. This is the
rule NannyML calls "delayed targets"; scoring early would leak the future into the metric.

A bar stamped T counts as known at T + `known_after`: 0 when bars are stamped at their close
(the simulator, the bars contract), one bar's length when a feed stamps bars at their open.

The predictions frame every function takes has columns `timestamp` (the feature bar's time),
`symbol`, `variant`, `model_version` and `prediction` (`normalize_predictions` accepts the
common aliases). `read_prediction_log` + `predictions_from_log` make one from the gateway's
Parquet log, read with DuckDB.
"""

from __future__ import annotations

import glob as _glob
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from tradeloop.clock import utc
from tradeloop.errors import BadInput

__all__ = [
    "PREDICTION_COLUMNS",
    "TIMESTAMP",
    "join_outcomes",
    "normalize_predictions",
    "outcomes",
    "predictions_from_log",
    "read_prediction_log",
    "read_recent_features",
]

TIMESTAMP = pl.Datetime("us", "UTC")
PREDICTION_COLUMNS = ("timestamp", "symbol", "variant", "model_version", "prediction")
_ALIASES = {
    "timestamp": ("time", "feature_time", "feature_timestamp"),
    "symbol": ("key",),
    "model_version": ("version",),
    "prediction": ("output",),
}
# The gateway's log (tradeloop.serving.predlog; not imported: serving sits beside monitoring).
_LOG_COLUMNS = ("ts", "request_id", "key", "route", "model", "version", "variant", "mode")
_LOG_OPTIONAL = ("symbol", "feature_time", "latency_ms", "trace_id", "out_of_range")
FEATURE_PREFIX = "f_"


def _require(frame: pl.DataFrame, columns: Collection[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadInput(f"{what} lacks column(s) {missing}; it has {frame.columns}")


def _as_utc(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Datetime):
        raise BadInput(f"column {column!r} must be a datetime, got {dtype}")
    expr = pl.col(column)
    expr = expr.dt.replace_time_zone("UTC") if dtype.time_zone is None else expr
    return frame.with_columns(expr.dt.convert_time_zone("UTC").cast(TIMESTAMP))


def normalize_predictions(frame: pl.DataFrame) -> pl.DataFrame:
    """The canonical predictions frame: aliases renamed, timestamps UTC, prediction Float64.

    Missing `variant`/`model_version` become "champion"/"" (a frame from a single model).
    Extra columns (ts, mode, key, ...) are kept.
    """
    renames: dict[str, str] = {}
    for target, aliases in _ALIASES.items():
        if target in frame.columns:
            continue
        for alias in aliases:
            if alias in frame.columns:
                renames[alias] = target
                break
    out = frame.rename(renames) if renames else frame
    if "variant" not in out.columns:
        out = out.with_columns(pl.lit("champion").alias("variant"))
    if "model_version" not in out.columns:
        out = out.with_columns(pl.lit("").alias("model_version"))
    _require(out, PREDICTION_COLUMNS, "predictions")
    out = _as_utc(out, "timestamp")
    if "ts" in out.columns:
        out = _as_utc(out, "ts")
    try:
        return out.with_columns(
            pl.col("prediction").cast(pl.Float64).fill_nan(None),
            pl.col("symbol").cast(pl.Utf8),
            pl.col("variant").cast(pl.Utf8),
            pl.col("model_version").cast(pl.Utf8),
        )
    except pl.exceptions.PolarsError as exc:
        raise BadInput(f"predictions: {str(exc).splitlines()[0]}") from exc


def _known_bars(bars: pl.DataFrame, as_of: datetime, known_after: timedelta) -> pl.DataFrame:
    _require(bars, ("timestamp", "symbol", "close"), "bars")
    b = _as_utc(bars.select("timestamp", "symbol", "close"), "timestamp")
    cutoff = utc(as_of) - known_after
    return b.filter(pl.col("timestamp") <= cutoff).sort("symbol", "timestamp")


def outcomes(
    bars: pl.DataFrame,
    *,
    horizon: int,
    as_of: datetime,
    known_after: timedelta = timedelta(0),
) -> pl.DataFrame:
    """Every bar known at `as_of`: timestamp, symbol, close, and — when bar t+h is known too —
    fwd_return and outcome_time (bar t+h's timestamp); both null while the outcome is pending."""
    if horizon < 1:
        raise BadInput(f"horizon must be >= 1 bar, got {horizon}")
    b = _known_bars(bars, as_of, known_after)
    return b.with_columns(
        (pl.col("close").shift(-horizon).over("symbol") / pl.col("close") - 1.0).alias(
            "fwd_return"
        ),
        pl.col("timestamp").shift(-horizon).over("symbol").alias("outcome_time"),
    )


def join_outcomes(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    horizon: int,
    as_of: datetime,
    known_after: timedelta = timedelta(0),
) -> pl.DataFrame:
    """The predictions that exist at `as_of`, each with fwd_return, outcome_time and `known`.

    A prediction exists at `as_of` when its feature bar is known then (and, for rows from the
    log, when it was made: `ts <= as_of`), so a replay over a complete log and complete bars
    sees exactly what a live monitor would have seen. `known` is False (fwd_return null) while
    bar t+h is not known at `as_of`: such a prediction is pending, never graded.
    """
    preds = normalize_predictions(predictions)
    cutoff = utc(as_of)
    preds = preds.filter(pl.col("timestamp") <= cutoff - known_after)
    if "ts" in preds.columns:
        preds = preds.filter(pl.col("ts") <= cutoff)
    out = outcomes(bars, horizon=horizon, as_of=as_of, known_after=known_after).select(
        "timestamp", "symbol", "fwd_return", "outcome_time"
    )
    drop = [c for c in ("fwd_return", "outcome_time", "known") if c in preds.columns]
    joined = preds.drop(drop).join(out, on=["symbol", "timestamp"], how="left")
    return joined.with_columns(pl.col("fwd_return").is_not_null().alias("known"))


# ------------------------------------------------------------------------ the prediction log


def _log_glob(root: str | Path) -> str:
    """`root` is the gateway's state folder (holding `predictions/`) or that folder itself."""
    p = Path(root)
    if p.name != "predictions" and (p / "predictions").is_dir():
        p = p / "predictions"
    return str(p / "**" / "*.parquet")


def read_prediction_log(
    root: str | Path,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    versions: Collection[str] | None = None,
    modes: Collection[str] | None = None,
    routes: Collection[str] | None = None,
) -> pl.DataFrame:
    """Rows of the gateway's Parquet log, filtered in DuckDB (only the columns needed are read;
    `since` also prunes whole `date=` partitions). Empty frame when there is no log yet.

    Columns: ts, request_id, key, route, model, model_version, variant, mode, prediction, and
    symbol, feature_time, latency_ms when the log has them (null in older files).
    """
    pattern = _log_glob(root)
    if not _glob.glob(pattern, recursive=True):
        return pl.DataFrame()
    src = f"read_parquet('{pattern}', hive_partitioning=true, union_by_name=true)"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        missing = [c for c in (*_LOG_COLUMNS, "prediction") if c not in have]
        if missing:
            raise BadInput(f"{pattern}: not a prediction log, lacks {missing}")
        cols = [*_LOG_COLUMNS, "prediction"]
        cols += [c for c in _LOG_OPTIONAL if c in have]
        where, params = _filters(have, model, since, until, versions, modes, routes)
        sql = f"SELECT {', '.join(cols)} FROM {src}{where}"
        try:
            frame = con.sql(sql, params=params).pl()
        except duckdb.Error as exc:
            raise BadInput(f"cannot read the prediction log {pattern}: {exc}") from exc
    finally:
        con.close()
    frame = frame.rename({"version": "model_version"})
    frame = _as_utc(frame, "ts")
    if "feature_time" in frame.columns:
        frame = _as_utc(frame, "feature_time")
    return frame


def _filters(
    have: set[str],
    model: str | None,
    since: datetime | None,
    until: datetime | None,
    versions: Collection[str] | None,
    modes: Collection[str] | None,
    routes: Collection[str] | None,
) -> tuple[str, list[object]]:
    """A parameterized WHERE clause (values never spliced into SQL)."""
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        since = utc(since)
        if "date" in have:  # prunes whole partitions before any file is opened
            where.append("date >= ?")
            params.append(since.date())
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts <= ?")
        params.append(utc(until))
    for column, values in (
        ("model", [model] if model is not None else None),
        ("version", versions),
        ("mode", modes),
        ("route", routes),
    ):
        if values is not None:
            values = list(values)
            if not values:
                where.append("false")
                continue
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def read_recent_features(
    root: str | Path,
    n: int,
    *,
    model: str | None = None,
    versions: Collection[str] | None = None,
    modes: Collection[str] | None = ("live",),
    until: datetime | None = None,
) -> pl.DataFrame:
    """The newest `n` logged rows' features (the `f_` prefix dropped) and `prediction`: the
    "current" table the drift report compares with the training reference (DriftSpec.window).

    Features a row's model did not use are null there (versions may differ in features).
    Shadow rows are left out by default: they repeat live traffic under another model.
    """
    pattern = _log_glob(root)
    if n < 1 or not _glob.glob(pattern, recursive=True):
        return pl.DataFrame()
    src = f"read_parquet('{pattern}', hive_partitioning=true, union_by_name=true)"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        feats = sorted(c for c in have if c.startswith(FEATURE_PREFIX))
        if "ts" not in have or "prediction" not in have:
            raise BadInput(f"{pattern}: not a prediction log")
        where, params = _filters(have, model, None, until, versions, modes, None)
        cols = ", ".join(f'"{c}"' for c in [*feats, "prediction"])
        sql = f"SELECT {cols} FROM {src}{where} ORDER BY ts DESC LIMIT {int(n)}"
        try:
            frame = con.sql(sql, params=params).pl()
        except duckdb.Error as exc:
            raise BadInput(f"cannot read the prediction log {pattern}: {exc}") from exc
    finally:
        con.close()
    out: pl.DataFrame = frame.rename({c: c.removeprefix(FEATURE_PREFIX) for c in feats})
    return out.reverse()


def predictions_from_log(
    log: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    known_after: timedelta = timedelta(0),
) -> pl.DataFrame:
    """Log rows as a predictions frame: which symbol, scored on which bar.

    The symbol is the log's `symbol` column, else its sticky `key` (the trading endpoint keys by
    symbol). The feature bar is the log's `feature_time`, else the symbol's newest bar known
    when the request was made (as-of join on `ts`), which is what the trading endpoint scores.
    Rows whose symbol has no bars (a request-id key, /invocations traffic) are dropped. A symbol
    bar scored more than once by one variant and version (a client polling) counts once, the
    first time, so samples stay one per symbol-bar as the A/B test assumes.
    """
    if log.height == 0:
        return pl.DataFrame(
            schema={
                "timestamp": TIMESTAMP,
                "symbol": pl.Utf8,
                "variant": pl.Utf8,
                "model_version": pl.Utf8,
                "prediction": pl.Float64,
                "ts": TIMESTAMP,
                "mode": pl.Utf8,
            }
        )
    frame = log
    if "model_version" not in frame.columns and "version" in frame.columns:
        frame = frame.rename({"version": "model_version"})
    _require(frame, ("ts", "key", "variant", "model_version", "prediction"), "prediction log")
    frame = _as_utc(frame, "ts")
    symbol = pl.col("key")
    if "symbol" in frame.columns:
        symbol = pl.coalesce(pl.col("symbol"), pl.col("key"))
    frame = frame.with_columns(symbol.cast(pl.Utf8).alias("symbol"))
    if "feature_time" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=TIMESTAMP).alias("feature_time"))
    else:
        frame = _as_utc(frame, "feature_time")
    _require(bars, ("timestamp", "symbol"), "bars")
    known = _as_utc(bars.select("timestamp", "symbol"), "timestamp").with_columns(
        (pl.col("timestamp") + known_after).alias("_known_at")
    )
    frame = frame.filter(pl.col("symbol").is_in(known["symbol"].unique().implode()))
    asof = (
        frame.with_row_index("_row")
        .sort("ts")
        .join_asof(
            known.sort("_known_at").select(
                "symbol", "_known_at", pl.col("timestamp").alias("_bar")
            ),
            left_on="ts",
            right_on="_known_at",
            check_sortedness=False,
            by="symbol",
            strategy="backward",
        )
        .sort("_row")
    )
    frame = (
        asof.with_columns(pl.coalesce(pl.col("feature_time"), pl.col("_bar")).alias("timestamp"))
        .drop("_row", "_known_at", "_bar")
        .filter(pl.col("timestamp").is_not_null())
    )
    if "mode" not in frame.columns:
        frame = frame.with_columns(pl.lit("live").alias("mode"))
    frame = frame.sort("ts").unique(
        subset=["variant", "model_version", "mode", "symbol", "timestamp"],
        keep="first",
        maintain_order=True,
    )
    return normalize_predictions(frame)
