"""The `data` section: where bars come from (simulator, CSV, Parquet) and how they are checked."""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from tradeloop.spec.base import SpecModel
from tradeloop.spec.durations import Duration

DataSourceName = Literal["simulator", "csv", "parquet"]
# the names `tradeloop.data.source` registers; a test holds the two lists together
DATA_SOURCES: tuple[str, ...] = typing.get_args(DataSourceName)


class Regime(SpecModel):
    """A market regime starting at bar `at` (0-based); later regimes replace earlier ones."""

    at: int = Field(0, ge=0, description="bar index at which this regime starts")
    drift: float = Field(0.0, description="mean log-return per bar")
    volatility: float = Field(0.01, gt=0, description="per-bar standard deviation of returns")
    correlation: float = Field(0.3, ge=0, le=0.99, description="pairwise correlation of shocks")
    signal: float = Field(
        0.15, ge=-1, le=1, description="autocorrelation a model can learn (momentum if > 0)"
    )
    volume: float = Field(1_000_000.0, gt=0, description="mean volume per bar")


class SimulatorSpec(SpecModel):
    symbols: list[str] = Field(default_factory=lambda: ["AAA", "BBB", "CCC", "DDD"], min_length=1)
    start: datetime = datetime(2023, 1, 2, tzinfo=UTC)
    bars: int = Field(4000, ge=50)
    seed: int = 7
    start_price: float = Field(100.0, gt=0)
    regimes: list[Regime] = Field(default_factory=lambda: [Regime()], min_length=1)

    @model_validator(mode="after")
    def _regimes_ordered(self) -> SimulatorSpec:
        ats = [r.at for r in self.regimes]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise ValueError("regimes must have strictly increasing 'at'")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be unique")
        return self


class ColumnMapping(SpecModel):
    """How a CSV/Parquet file's columns map onto bars.

    Columns are named as in the header row, or given by 0-based position when `header` is
    false (HistData, some broker exports have no header). The decimal mark is explicit because a
    European "1,10391" read with the wrong one is a silent 100000x error, not a parse failure.
    """

    header: bool = Field(True, description="the first row names the columns (CSV only)")
    delimiter: str | None = Field(
        None, description="one character or tab/comma/semicolon/pipe; None sniffs , ; TAB |"
    )
    decimal: Literal[".", ","] = Field(
        ".", description="decimal mark of text numbers; the other mark is the thousands separator"
    )
    timestamp: str | int | list[str | int] = Field(
        "timestamp", description="a column, or several (date, time) joined with a space"
    )
    format: str | None = Field(None, description="strptime format; None lets the reader infer")
    timezone: str = Field("UTC", description="zone of naive timestamps (e.g. America/New_York)")
    symbol: str | int | None = Field(None, description="column holding the symbol")
    symbol_value: str | None = Field(None, description="constant symbol when there is no column")
    symbol_from_file: str | None = Field(
        None, description="regex searched in each file's name; its first group is the symbol"
    )
    open: str | int = "open"
    high: str | int = "high"
    low: str | int = "low"
    close: str | int = "close"
    volume: str | int | None = "volume"
    adjusted_close: str | int | None = Field(
        None, description="adjusted close: open/high/low/close are scaled by it / close per row"
    )

    @model_validator(mode="before")
    @classmethod
    def _delimiter_name(cls, data: Any) -> Any:
        names = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
        d = data.get("delimiter") if isinstance(data, dict) else None
        if isinstance(d, str) and d.lower() in names:
            return {**data, "delimiter": names[d.lower()]}
        return data

    def refs(self) -> dict[str, str | int]:
        """Every column the mapping reads, by role (a multi-column timestamp as timestamp[i])."""
        ts = self.timestamp if isinstance(self.timestamp, list) else [self.timestamp]
        out: dict[str, str | int] = {
            (f"timestamp[{i}]" if len(ts) > 1 else "timestamp"): r for i, r in enumerate(ts)
        }
        for role in ("symbol", "open", "high", "low", "close", "volume", "adjusted_close"):
            ref = getattr(self, role)
            if ref is not None:
                out[role] = ref
        return out

    @model_validator(mode="after")
    def _consistent(self) -> ColumnMapping:
        self._check_symbol_source()
        self._check_delimiter()
        self._check_refs()
        if self.timezone != "UTC":
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"timezone {self.timezone!r} is not a known zone (e.g. America/New_York)"
                ) from exc
        return self

    def _check_symbol_source(self) -> None:
        given = [self.symbol is not None, self.symbol_value is not None, self.symbol_from_file]
        if sum(bool(g) for g in given) != 1:
            raise ValueError(
                "give exactly one of 'symbol' (a column), 'symbol_value' (a constant) or "
                "'symbol_from_file' (a regex on the file name)"
            )
        if self.symbol_from_file is not None:
            try:
                groups = re.compile(self.symbol_from_file).groups
            except re.error as exc:
                raise ValueError(f"symbol_from_file is not a valid regex: {exc}") from exc
            if groups < 1:
                raise ValueError("symbol_from_file needs a group, e.g. '^([A-Z]+)_'")

    def _check_delimiter(self) -> None:
        d = self.delimiter
        if d is None:
            return
        if len(d) != 1 or d.isalnum() or d in '"\n\r.' or len(d.encode()) != 1:
            raise ValueError(f"delimiter must be one ASCII punctuation character or tab, got {d!r}")
        if d == self.decimal:
            raise ValueError(f"delimiter and decimal are both {d!r}")

    def _check_refs(self) -> None:
        """Names with a header row, 0-based positions without one: never a mix."""
        if isinstance(self.timestamp, list) and not self.timestamp:
            raise ValueError("timestamp: give a column or a non-empty list of columns")
        refs = self.refs()
        negative = [f"{k} is {v}" for k, v in refs.items() if isinstance(v, int) and v < 0]
        if negative:
            raise ValueError(f"column positions are 0-based (>= 0), but {', '.join(negative)}")
        if self.header:
            pos = [f"{k} is position {v}" for k, v in refs.items() if isinstance(v, int)]
            if pos:
                raise ValueError(
                    f"header is true, so columns are named as in the header row, but "
                    f"{', '.join(pos)} (set header: false for a file without a header row, or "
                    "quote a column that is named by digits)"
                )
        else:
            named = [f"{k} is the name {v!r}" for k, v in refs.items() if isinstance(v, str)]
            if named:
                raise ValueError(
                    "header is false, so columns are 0-based positions (e.g. open: 1), but "
                    + ", ".join(named)
                )


class ValidationRules(SpecModel):
    outlier_sigma: float = Field(10.0, gt=0, description="|return| / robust sigma for a warning")
    max_gap_bars: int = Field(
        0, ge=0, description="gaps longer than this many bars are errors (0: gaps only warn)"
    )


class StreamSpec(SpecModel):
    """The live stream (`data.stream`): bars arriving through a broker, persisted by
    `tradeloop ingest` beside the history (see docs/streaming.md for the message schema)."""

    broker: Literal["nats", "redis"] = Field("nats", description="NATS JetStream or Redis Streams")
    url: str = Field(
        "nats://127.0.0.1:4222",
        description="broker URL (nats://host:4222 or redis://host:6379/0); credentials by "
        "reference: ${ENV_VAR} is expanded when ingest starts",
    )
    subject: str = Field(
        "bars.>", description="NATS subject filter, or the Redis stream key", min_length=1
    )
    stream: str = Field(
        "BARS",
        description="JetStream stream name (created if absent); unused on Redis",
        pattern=r"^[A-Za-z0-9_-]+$",
    )
    consumer: str = Field(
        "tradeloop-ingest",
        description="durable consumer (JetStream) or consumer group (Redis) name",
        pattern=r"^[A-Za-z0-9_-]+$",
    )
    format: Literal["json"] = Field("json", description="message format: JSON bars")
    lateness: Duration = Field(
        timedelta(hours=6),
        description="bars older than the symbol's newest persisted bar by more than this are "
        "dead-lettered; within it they are accepted out of order",
    )
    future_tolerance: Duration = Field(
        timedelta(minutes=5), description="bars stamped further than this ahead of now are refused"
    )
    ack_wait: Duration = Field(
        timedelta(seconds=30),
        description="a message fetched and not acked (the consumer died) comes again after this",
    )
    batch: int = Field(500, ge=1, le=100_000, description="messages fetched per pull")
    signals_subject: str | None = Field(
        "signals",
        description="prefix of the subject each new signal is published on "
        "(<prefix>.<pipeline>.<symbol>); null turns publishing off",
    )


class DataSpec(SpecModel):
    source: Literal["simulator", "csv", "parquet"] = "simulator"
    frequency: Duration = timedelta(hours=1)
    calendar: Literal["continuous", "weekdays"] = Field(
        "continuous",
        description="'weekdays' allows weekend gaps: Saturday and Sunday, and for intraday bars "
        "the FX weekend from Friday 17:00 New York",
    )
    simulator: SimulatorSpec = Field(default_factory=SimulatorSpec)
    path: str | None = Field(None, description="file or glob, relative to the spec")
    columns: ColumnMapping | None = None
    validation: ValidationRules = Field(default_factory=ValidationRules)
    stream: StreamSpec | None = Field(
        None, description="a live stream persisted beside the history (tradeloop ingest)"
    )

    @model_validator(mode="after")
    def _files_need_path(self) -> DataSpec:
        if self.source != "simulator" and (self.path is None or self.columns is None):
            raise ValueError(f"source '{self.source}' needs 'path' and 'columns'")
        if self.source == "parquet" and self.columns is not None and not self.columns.header:
            raise ValueError("columns.header: false is for CSV; Parquet columns always have names")
        return self
