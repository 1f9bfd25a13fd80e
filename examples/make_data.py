"""Regenerate the example data files: synthetic, seeded, shaped like real exchange exports.

We cannot ship real market data, so this makes files with the statistics and the warts of real
ones, and commits them so nobody needs to run it:

- daily-equities/data/{ACME,BOLT,CRUX}.csv: Yahoo-style, as pandas saves a yfinance download
  after reset_index() (an unnamed index column), newest first, float32 price noise
  (193.899994), quoted volumes with thousands separators, NYSE trading days only (US holidays
  are missing), raw closes with a 4:1 and a 2:1 split plus quarterly dividends and an
  `Adj Close` column adjusted for both. Returns: a GARCH(1,1) market factor with fat tails and a
  volatility shock in spring 2020, betas, GARCH idiosyncratic noise.
- fx-hourly/data/{EURUSD,GBPUSD}_H1.csv: MetaTrader 5 "Export bars" style: tab-separated,
  `<DATE>` (2024.01.02) and `<TIME>` (00:00:00) columns, broker server time (EET, Europe/Athens),
  five decimals, tick volume and spread but no traded volume. Bars exist from Sunday 17:00 to
  Friday 17:00 New York time (the FX week), without Christmas Day and New Year's Day. Returns:
  intraday volatility seasonality, volatility clustering, correlated pairs.

Both carry a small planted effect, so a model has something to learn and the example's gates
can pass: daily equity returns partly reverse the next day (lag-1 autocorrelation -0.08, the
short-term reversal of the literature, on the strong side), and FX prices are a random walk plus
a deviation from it that decays with a 24-hour half-life. It is synthetic: the examples show the
workflow on realistic files, not an edge you will find in real markets.

    .venv/bin/python examples/make_data.py [--out DIR]   # same seed, same bytes
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20240601
EQUITY_REVERSAL = -0.08  # lag-1 autocorrelation of daily returns (short-term reversal)
FX_DEVIATION = 5.0  # sd of the mean-reverting deviation from fair value, in hourly vols
FX_HALF_LIFE = 24  # hours for half of a deviation to decay


# ------------------------------------------------------------------------------ calendars


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (b - (b + 8) // 25 + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Monday=0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(d: date) -> date | None:
    """NYSE rule: a Saturday holiday is taken on Friday (not across a year end), Sunday on Monday."""
    if d.weekday() == 5:
        return None if (d.month, d.day) == (1, 1) else d - timedelta(days=1)
    return d + timedelta(days=1) if d.weekday() == 6 else d


def nyse_holidays(year: int) -> set[date]:
    days = {
        _observed(date(year, 1, 1)),
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    if year == 2018:
        days.add(date(2018, 12, 5))  # national day of mourning (G. H. W. Bush)
    return {d for d in days if d is not None}


def trading_days(start: date, end: date) -> list[date]:
    hol = set().union(*(nyse_holidays(y) for y in range(start.year, end.year + 1)))
    n = (end - start).days + 1
    days = (start + timedelta(days=i) for i in range(n))
    return [d for d in days if d.weekday() < 5 and d not in hol]


def fx_hours(start: datetime, end: datetime) -> list[datetime]:
    """Hour bars (UTC) of the FX week, Sunday 17:00 to Friday 17:00 New York, without
    Christmas Day and New Year's Day (UTC dates), when most feeds have no quotes."""
    ny = ZoneInfo("America/New_York")
    out, t = [], start
    while t < end:
        local = t.astimezone(ny)
        wd, h = local.weekday(), local.hour
        open_ = wd < 4 or (wd == 4 and h < 17) or (wd == 6 and h >= 17)
        if open_ and (t.month, t.day) not in ((12, 25), (1, 1)):
            out.append(t)
        t += timedelta(hours=1)
    return out


# ------------------------------------------------------------------------------ processes


def garch(
    rng: np.random.Generator, n: int, vol: float, a: float = 0.08, b: float = 0.90
) -> np.ndarray:
    """Unit-variance-scaled GARCH(1,1) returns with Student-t (df 5) shocks, sd ~ `vol`."""
    z = rng.standard_t(5, n) / np.sqrt(5 / 3)
    w = vol**2 * (1 - a - b)
    out = np.empty(n)
    s2 = vol**2
    for t in range(n):
        out[t] = np.sqrt(s2) * z[t]
        s2 = w + a * out[t] ** 2 + b * s2
    return out


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) with persistence `phi` and standard deviation `sd`."""
    e = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    m = rng.normal(0.0, sd)
    for t in range(n):
        m = phi * m + e[t]
        out[t] = m
    return out


def ohlc(
    rng: np.random.Generator, prev_close: np.ndarray, r: np.ndarray, gap_share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open after an overnight gap, close after the return, high/low beyond both by a range
    draw proportional to the bar's volatility."""
    close = prev_close * np.exp(r)
    open_ = prev_close * np.exp(gap_share * r + 0.15 * np.abs(r) * rng.normal(size=r.size))
    scale = np.abs(r) + np.median(np.abs(r))
    high = np.maximum(open_, close) * np.exp(0.5 * scale * rng.exponential(size=r.size))
    low = np.minimum(open_, close) * np.exp(-0.5 * scale * rng.exponential(size=r.size))
    return open_, high, low, close


# ---------------------------------------------------------------------------- equities


def _f32(x: float) -> str:
    """Yahoo's float32 noise: 193.9 -> '193.899994'."""
    return f"{float(np.float32(x)):.6f}"


EQUITIES = {
    # name: start price, beta, idiosyncratic vol (annual), drift (annual), base volume,
    #       splits {date: ratio}, quarterly dividend yield
    "ACME": (105.0, 1.15, 0.22, 0.14, 95_000_000, {date(2020, 8, 31): 4}, 0.0022),
    "BOLT": (48.0, 0.85, 0.18, 0.07, 18_000_000, {}, 0.0075),
    "CRUX": (71.0, 1.30, 0.30, 0.10, 7_500_000, {date(2018, 6, 20): 2}, 0.0),
}


def make_equities(rng: np.random.Generator, out_dir: Path) -> list[Path]:
    days = trading_days(date(2016, 1, 4), date(2023, 12, 29))
    n = len(days)
    stress = np.array([date(2020, 2, 24) <= d <= date(2020, 4, 30) for d in days])
    market = garch(rng, n, 0.16 / np.sqrt(252)) * np.where(stress, 3.0, 1.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (p0, beta, ivol, mu, vol0, splits, div) in EQUITIES.items():
        idio = garch(rng, n, ivol / np.sqrt(252), a=0.06, b=0.92)
        shock = beta * market + idio
        r = np.empty(n)
        for t in range(n):  # an AR(1) around the drift: yesterday's move partly reverses
            r[t] = mu / 252 + shock[t] + EQUITY_REVERSAL * (r[t - 1] - mu / 252 if t else 0.0)
        # raw (as traded) closes: split days divide the price, ex-dividend days drop it
        ex_div = {
            d for d in days if d.month in (2, 5, 8, 11) and 8 <= d.day <= 14 and d.weekday() == 3
        }
        raw = np.empty(n)
        adj_events: list[tuple[int, float]] = []  # (index of event day, factor for earlier days)
        prev = p0
        for t, d in enumerate(days):
            px = prev * np.exp(r[t])
            if d in splits:
                px /= splits[d]
                adj_events.append((t, 1.0 / splits[d]))
            if div and d in ex_div:
                cash = round(div * prev, 2)  # declared in cents
                px -= cash
                adj_events.append((t, 1.0 - cash / prev))
            raw[t] = px
            prev = px
        factor = np.ones(n)
        for t, f in adj_events:
            factor[:t] *= f
        prev_close = np.concatenate([[p0], raw[:-1]])
        split_div = raw / (prev_close * np.exp(r))  # the event's price change, not a return
        open_, high, low, close = ohlc(rng, prev_close * split_div, r, gap_share=0.3)
        sigma = np.std(r)
        surprise = np.minimum(np.abs(r) / sigma, 5.0)
        volume = vol0 * np.exp(rng.normal(0, 0.3, n)) * (1 + 0.6 * surprise) / 1.5
        for d, k in splits.items():
            volume[[i for i, x in enumerate(days) if x >= d]] *= k  # more shares after a split
        rows = [",Date,Open,High,Low,Close,Adj Close,Volume"]
        for i, t in enumerate(range(n - 1, -1, -1)):  # newest first
            rows.append(
                f"{i},{days[t].isoformat()},{_f32(open_[t])},{_f32(high[t])},{_f32(low[t])},"
                f'{_f32(close[t])},{_f32(close[t] * factor[t])},"{int(volume[t]):,}"'
            )
        path = out_dir / f"{name}.csv"
        path.write_text("\n".join(rows) + "\n")
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------- FX

# pair: start price, annual volatility of the random walk (the deviation adds ~1.5x), spread
PAIRS = {"EURUSD": (1.0705, 0.055, 0.00007), "GBPUSD": (1.2095, 0.063, 0.00011)}
MT5_HEADER = "\t".join(
    ("<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>")
)
# relative volatility by UTC hour: quiet Asia, London open, London/New York overlap, NY close
_SEASON = np.array(
    [0.7, 0.6, 0.6, 0.6, 0.6, 0.7, 0.8, 1.2, 1.4, 1.3, 1.2, 1.1,
     1.3, 1.6, 1.6, 1.5, 1.3, 1.0, 0.9, 0.8, 0.7, 0.6, 0.7, 0.7]
)  # fmt: skip


def make_fx(rng: np.random.Generator, out_dir: Path) -> list[Path]:
    hours = fx_hours(datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    n = len(hours)
    hour = np.array([h.hour for h in hours])
    season = _SEASON[hour] / np.sqrt(np.mean(_SEASON[hour] ** 2))
    common_shock = garch(rng, n, 1.0, a=0.04, b=0.95)
    phi = 0.5 ** (1 / FX_HALF_LIFE)
    common_dev = ar1(rng, n, phi=phi, sd=1.0)
    server = ZoneInfo("Europe/Athens")  # the usual MetaTrader server time: EET/EEST
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (p0, annual_vol, spread) in PAIRS.items():
        hvol = annual_vol / np.sqrt(24 * 5 * 52)
        own = garch(rng, n, 1.0, a=0.04, b=0.95)
        shock = (0.8 * common_shock + 0.6 * own) * hvol * season
        dev = (0.6 * common_dev + 0.8 * ar1(rng, n, phi=phi, sd=1.0)) * FX_DEVIATION * hvol
        r = shock + np.diff(dev, prepend=dev[0])  # a random walk plus a stationary deviation
        prev_close = p0 * np.exp(np.concatenate([[0.0], np.cumsum(r)[:-1]]))
        open_, high, low, close = ohlc(rng, prev_close, r, gap_share=0.0)
        ticks = rng.poisson(1800 * season * (1 + np.abs(r) / hvol) / 2)
        pts = np.maximum(1, np.round(spread / 1e-5 * (1.6 - 0.4 * season) + rng.normal(0, 1.5, n)))
        rows = [MT5_HEADER]
        for t in range(n):
            local = hours[t].astimezone(server)
            rows.append(
                f"{local:%Y.%m.%d}\t{local:%H:%M:%S}\t{open_[t]:.5f}\t{high[t]:.5f}\t"
                f"{low[t]:.5f}\t{close[t]:.5f}\t{ticks[t]}\t0\t{int(pts[t])}"
            )
        path = out_dir / f"{name}_H1.csv"
        path.write_text("\n".join(rows) + "\n")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Write the files under examples/ (or under --out DIR, for a check that they regenerate)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[args.index("--out") + 1]) if "--out" in args else HERE
    rng = np.random.default_rng(SEED)
    paths = make_equities(rng, root / "daily-equities" / "data")
    paths += make_fx(rng, root / "fx-hourly" / "data")
    for p in paths:
        print(f"{p}: {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
