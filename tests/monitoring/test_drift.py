"""Drift statistics against SciPy, method selection, profiles, reports, files, calibration."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats
from scipy.spatial import distance

from tradeloop.errors import BadInput
from tradeloop.monitoring.drift import (
    DriftReport,
    ReferenceProfile,
    compare_files,
    drift_report,
    load_reference,
    load_table,
)
from tradeloop.monitoring.drift.columns import detect_kind
from tradeloop.monitoring.drift.distances import (
    ks_pvalue,
    ks_statistic,
    ks_statistic_sketch,
    wasserstein,
    wasserstein_sketch,
)
from tradeloop.monitoring.drift.methods import default_method
from tradeloop.monitoring.drift.samples import (
    Sample,
    Sketch,
    histogram_counts,
    sketch_ranks,
    sturges_edges,
)
from tradeloop.monitoring.drift.stattests import chisquare_pvalue, jensenshannon, psi, z_pvalue
from tradeloop.spec import DriftSpec

RTOL = 1e-9


def _evidently_fill(shares: np.ndarray) -> np.ndarray:
    """Evidently's get_binned_data zero replacement, written out independently."""
    smallest = shares[shares != 0].min()
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    out = shares.copy()
    np.place(out, out == 0, fill)
    return out


def _binned(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's numeric binning: Sturges bins over both samples, shares of each."""
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    return np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


# ------------------------------------------------------------------------ methods vs SciPy


@pytest.mark.parametrize(("n", "m"), [(40, 65), (800, 800), (3000, 12000), (20000, 15000)])
def test_ks_matches_scipy(rng: np.random.Generator, n: int, m: int) -> None:
    ref = rng.normal(size=n)
    cur = rng.normal(0.05, 1.1, size=m)
    cur[:10] = ref[:10]  # ties across the samples
    ref = np.round(ref, 2)  # and within them
    expected = stats.ks_2samp(ref, cur)
    a, b = Sample.from_unsorted(ref), Sample.from_unsorted(cur)
    assert ks_statistic(a, b) == pytest.approx(expected.statistic, rel=RTOL, abs=1e-15)
    assert ks_pvalue(a, b) == pytest.approx(expected.pvalue, rel=RTOL, abs=1e-300)


@pytest.mark.parametrize(("n", "m"), [(30, 31), (1000, 1000), (50000, 23456)])
def test_normed_wasserstein_matches_scipy(rng: np.random.Generator, n: int, m: int) -> None:
    ref = np.round(rng.lognormal(size=n), 3)
    cur = np.round(rng.lognormal(0.1, 1.0, size=m), 3)
    expected = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    report = drift_report({"x": ref}, {"x": cur}, DriftSpec(method="wasserstein"))
    assert report.column("x").statistic == pytest.approx(expected, rel=RTOL)
    # the compressed (distinct values and counts) form a profile stores is exact too
    values, counts = np.unique(ref, return_counts=True)
    compressed = Sample(values.astype(np.float64), counts)
    raw_w = stats.wasserstein_distance(ref, cur)
    assert wasserstein(compressed, Sample.from_unsorted(cur)) == pytest.approx(raw_w, rel=RTOL)
    assert compressed.std() == pytest.approx(float(np.std(ref)), rel=RTOL)


def test_wasserstein_norm_floor(rng: np.random.Generator) -> None:
    ref = np.full(2000, 3.0)
    ref[0] = 3.0000001  # std far below 0.001: Evidently divides by 0.001 instead
    cur = ref + 0.0005
    expected = stats.wasserstein_distance(ref, cur) / 0.001
    stat = drift_report({"x": ref}, {"x": cur}, DriftSpec(method="wasserstein")).column("x")
    assert stat.statistic == pytest.approx(expected, rel=RTOL)


def test_binning_is_numpys_sturges(rng: np.random.Generator) -> None:
    for n, m in [(10, 7), (1000, 1000), (4096, 4096), (12345, 999)]:
        ref, cur = rng.standard_t(3, size=n), rng.standard_t(3, size=m) + 0.2
        both = np.concatenate([ref, cur])
        edges = sturges_edges(both.min(), both.max(), len(both))
        assert np.array_equal(edges, np.histogram_bin_edges(both, bins="sturges"))
        assert np.array_equal(
            histogram_counts(Sample.from_unsorted(ref), edges), np.histogram(ref, edges)[0]
        )
    # one distinct value: numpy widens the range by 0.5 on each side
    assert np.array_equal(
        sturges_edges(2.0, 2.0, 50), np.histogram_bin_edges(np.full(50, 2.0), bins="sturges")
    )


def test_psi_matches_direct_formula(rng: np.random.Generator) -> None:
    ref = rng.normal(size=5000)
    cur = np.concatenate(
        [rng.normal(0.3, 1.0, size=4000), rng.uniform(8, 9, size=10)]
    )  # empty bins
    r, c = _binned(ref, cur)
    assert (r == 0).any()
    rf, cf = _evidently_fill(r), _evidently_fill(c)
    expected = float(np.sum((rf - cf) * np.log(rf / cf)))
    assert psi(r, c) == pytest.approx(expected, rel=RTOL)
    stat = drift_report({"x": ref}, {"x": cur}, DriftSpec(method="psi")).column("x")
    assert stat.statistic == pytest.approx(expected, rel=RTOL)
    assert stat.drifted == (expected >= 0.1)


def test_jensenshannon_matches_scipy(rng: np.random.Generator) -> None:
    ref = rng.gamma(2.0, size=6000)
    cur = rng.gamma(2.3, size=3000)
    r, c = _binned(ref, cur)
    expected = float(distance.jensenshannon(r, c))
    assert jensenshannon(r, c) == pytest.approx(expected, rel=RTOL)
    stat = drift_report({"x": ref}, {"x": cur}, DriftSpec(method="jensenshannon")).column("x")
    assert stat.statistic == pytest.approx(expected, rel=RTOL)


def test_per_value_bins_for_low_cardinality_and_categories(rng: np.random.Generator) -> None:
    ref = rng.choice(["a", "b", "c", "d"], size=3000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "e"], size=2000, p=[0.3, 0.3, 0.3, 0.1])  # d gone, e new
    keys = sorted(set(ref) | set(cur))
    r = np.array([np.mean(ref == k) for k in keys])
    c = np.array([np.mean(cur == k) for k in keys])
    rf, cf = _evidently_fill(r), _evidently_fill(c)
    report = drift_report({"s": ref}, {"s": cur}, DriftSpec(features={"s": "psi"}))
    assert report.column("s").statistic == pytest.approx(
        float(np.sum((rf - cf) * np.log(rf / cf))), rel=RTOL
    )
    report = drift_report({"s": ref}, {"s": cur})
    assert report.column("s").method == "jensenshannon"
    assert report.column("s").statistic == pytest.approx(
        float(distance.jensenshannon(r, c)), rel=RTOL
    )
    # a float column with <= 20 distinct values is binned per value too, not by Sturges
    fref = rng.integers(0, 15, size=3000) * 0.5
    fcur = rng.integers(0, 16, size=3000) * 0.5
    keys_f = np.union1d(fref, fcur)
    rr = np.array([np.mean(fref == k) for k in keys_f])
    cc = np.array([np.mean(fcur == k) for k in keys_f])
    stat = drift_report({"f": fref}, {"f": fcur}, DriftSpec(method="jensenshannon")).column("f")
    assert stat.statistic == pytest.approx(float(distance.jensenshannon(rr, cc)), rel=RTOL)


def test_chisquare_is_the_homogeneity_test(rng: np.random.Generator) -> None:
    ref = rng.choice(["x", "y", "z"], size=700, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["x", "y", "z"], size=400, p=[0.4, 0.35, 0.25])
    keys = ["x", "y", "z"]
    table = np.array([[np.sum(ref == k) for k in keys], [np.sum(cur == k) for k in keys]])
    expected = stats.chi2_contingency(table, correction=False).pvalue
    stat = drift_report({"s": ref}, {"s": cur}).column("s")
    assert stat.method == "chisquare"  # reference <= 1000 rows, > 2 categories
    assert stat.statistic == pytest.approx(expected, rel=RTOL)
    assert chisquare_pvalue(np.array([7]), np.array([9])) == 1.0


def test_z_test_matches_two_proportion_formula(rng: np.random.Generator) -> None:
    ref = rng.random(600) < 0.3
    cur = rng.random(500) < 0.38
    p1, p2 = ref.mean(), cur.mean()
    pooled = (ref.sum() + cur.sum()) / (len(ref) + len(cur))
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
    expected = 2 * (1 - stats.norm.cdf(abs(z)))
    stat = drift_report({"b": ref}, {"b": cur}).column("b")
    assert stat.method == "z"
    assert stat.statistic == pytest.approx(expected, rel=RTOL)
    assert z_pvalue(np.array([50]), np.array([40])) == 1.0  # one value in both: no drift


# --------------------------------------------------------------------- selection and types


def test_default_method_selection_mirrors_evidently() -> None:
    assert default_method("numeric", 1000, 6) == "ks"
    assert default_method("numeric", 1000, 5) == "chisquare"
    assert default_method("numeric", 1000, 2) == "z"
    assert default_method("categorical", 500, 3) == "chisquare"
    assert default_method("categorical", 500, 2) == "z"
    assert default_method("numeric", 1001, 6) == "wasserstein"
    assert default_method("numeric", 1001, 5) == "jensenshannon"
    assert default_method("categorical", 1001, 2) == "jensenshannon"


def test_column_types_mirror_evidently(rng: np.random.Generator) -> None:
    n = 400
    df = pl.DataFrame(
        {
            "f": rng.normal(size=n),
            "i_few": rng.integers(0, 10, size=n),
            "i_many": rng.integers(0, 1000, size=n),
            "s": rng.choice(["a", "b"], size=n),
            "text": [f"note {i}" for i in range(n)],
            "b": rng.random(n) < 0.5,
            "t": [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(n)],
        }
    )
    kinds = {c: detect_kind(df[c]) for c in df.columns}
    assert kinds == {
        "f": "numeric",
        "i_few": "categorical",
        "i_many": "numeric",
        "s": "categorical",
        "text": None,
        "b": "categorical",
        "t": None,
    }
    report = drift_report(df, df)
    assert set(report.skipped) == {"text", "t"}
    assert "text" in report.skipped["text"]
    assert report.column("i_many").method == "ks" and report.column("i_few").method == "chisquare"


def test_spec_methods_thresholds_and_share(rng: np.random.Generator) -> None:
    ref = {
        "a": rng.normal(size=3000),
        "b": rng.normal(size=3000),
        "c": rng.choice(["p", "q", "r"], 3000),
    }
    cur = {
        "a": rng.normal(0.3, 1, size=3000),
        "b": rng.normal(size=3000),
        "c": rng.choice(["p", "q", "r"], 3000),
    }
    # a global method that cannot apply to a categorical column falls back to the default there
    report = drift_report(ref, cur, DriftSpec(method="ks", share=0.3))
    assert [c.method for c in report.columns] == ["ks", "ks", "jensenshannon"]
    assert report.drifted_columns == ["a"]
    assert report.share == pytest.approx(1 / 3) and report.dataset_drift
    assert not drift_report(ref, cur, DriftSpec(method="ks", share=0.5)).dataset_drift
    # a threshold replaces every method's default; per-feature methods win over the global one
    report = drift_report(
        ref, cur, DriftSpec(threshold=0.9, features={"b": "psi", "c": "chisquare"})
    )
    assert [(c.method, c.threshold) for c in report.columns] == [
        ("wasserstein", 0.9),
        ("psi", 0.9),
        ("chisquare", 0.9),
    ]
    with pytest.raises(BadInput, match="does not apply to categorical column 'c'"):
        drift_report(ref, cur, DriftSpec(features={"c": "wasserstein"}))
    with pytest.raises(BadInput, match="not in the data: nope"):
        drift_report(ref, cur, DriftSpec(features={"nope": "ks"}))


def test_inputs_polars_pandas_and_dicts_agree(rng: np.random.Generator) -> None:
    ref = {"x": rng.normal(size=2000), "k": rng.integers(0, 4, size=2000)}
    cur = {"x": rng.normal(0.1, 1, size=1500), "k": rng.integers(0, 4, size=1500)}
    a = drift_report(ref, cur).to_dict()
    b = drift_report(pl.DataFrame(ref), pl.DataFrame(cur)).to_dict()
    c = drift_report(pd.DataFrame(ref), pd.DataFrame(cur)).to_dict()
    assert a == b == c


def test_missing_and_infinite_values_are_dropped(rng: np.random.Generator) -> None:
    ref = rng.normal(size=1500)
    cur = rng.normal(0.2, 1, size=1500)
    dirty = cur.copy()
    dirty[::50] = np.nan
    dirty[1::97] = np.inf
    clean = dirty[np.isfinite(dirty)]
    got = drift_report({"x": ref}, {"x": dirty}).column("x")
    want = drift_report({"x": ref}, {"x": clean}).column("x")
    assert got.statistic == want.statistic and got.n_current == len(clean)
    report = drift_report({"x": ref, "y": ref}, {"x": cur, "y": np.full(1500, np.nan)})
    assert report.skipped == {"y": "current: no finite values"}


# --------------------------------------------------------------------------------- profiles


def test_profile_sketch_agrees_with_exact_within_its_bounds(rng: np.random.Generator) -> None:
    n = 200_000
    ref = {
        "normal": rng.normal(size=n),
        "heavy": rng.standard_t(2, size=n),
        "skew": rng.lognormal(size=n),
        "lumpy": np.round(rng.normal(size=n), 1),  # ~80 distinct values: stored exactly
    }
    cur = {k: v[: n // 2] * 1.02 + 0.03 for k, v in ref.items()}
    profile = ReferenceProfile.from_table(ref)
    restored = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert not restored.columns["normal"].exact and restored.columns["lumpy"].exact
    for method in ("wasserstein", "ks", "psi", "jensenshannon"):
        spec = DriftSpec(method=method)
        exact = drift_report(ref, cur, spec)
        approx = drift_report(restored, cur, spec)
        for e, a in zip(exact.columns, approx.columns, strict=True):
            col = restored.columns[e.column]
            assert a.exact == col.exact
            if col.exact:
                assert a.statistic == pytest.approx(e.statistic, rel=RTOL)
            elif method == "wasserstein":
                assert abs(a.statistic - e.statistic) <= col.w_error / col.std + 1e-12
                assert col.w_error / col.std < 1e-3
            elif method in ("psi", "jensenshannon"):
                assert a.statistic == pytest.approx(e.statistic, rel=0.05, abs=1e-3)
    for name in ("normal", "heavy", "skew"):
        col = restored.columns[name]
        exact_d = ks_statistic(Sample.from_unsorted(ref[name]), Sample.from_unsorted(cur[name]))
        sketch_d = ks_statistic_sketch(col.sketch, Sample.from_unsorted(cur[name]))
        assert abs(sketch_d - exact_d) <= col.ks_error + 1e-12
        assert col.ks_error < 2e-4


def test_sketch_bounds_are_measured_distances(rng: np.random.Generator) -> None:
    x = Sample.from_unsorted(rng.exponential(size=50_000))
    sketch = Sketch.of(x, 256)
    ranks = sketch_ranks(50_000, 256)
    assert ranks[0] == 0 and ranks[-1] == 49_999 and np.all(np.diff(ranks) > 0)
    assert np.array_equal(sketch.quantiles, x.values[ranks])
    # the model CDF passes through every knot
    assert np.allclose(sketch.cdf(sketch.quantiles), ranks / 49_999)
    assert 0 < ks_statistic_sketch(sketch, x) < 0.01
    assert 0 < wasserstein_sketch(sketch, x) < 0.01


def test_sketch_with_point_masses_stays_within_bounds(rng: np.random.Generator) -> None:
    # a third of the values exactly 0 and some at 2.5: repeated knots, a CDF with jumps
    x = np.concatenate([rng.normal(size=70_000), np.zeros(30_000), np.full(5_000, 2.5)])
    y = np.concatenate([rng.normal(0.05, 1, size=60_000), np.zeros(25_000), np.full(8_000, 2.5)])
    ref, cur = Sample.from_unsorted(x), Sample.from_unsorted(y)
    sketch = Sketch.of(ref, 512)
    ks_error, w_error = ks_statistic_sketch(sketch, ref), wasserstein_sketch(sketch, ref)
    assert abs(ks_statistic_sketch(sketch, cur) - ks_statistic(ref, cur)) <= ks_error + 1e-12
    assert abs(wasserstein_sketch(sketch, cur) - wasserstein(ref, cur)) <= w_error + 1e-12
    assert ks_error < 2e-3 and w_error < 1e-3


def test_small_reference_profile_is_exact_and_round_trips(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    ref = pl.DataFrame(
        {
            "x": rng.normal(size=800),
            "c": rng.choice(["u", "v", "w"], 800),
            "ok": rng.random(800) < 0.5,
        }
    )
    cur = pl.DataFrame(
        {
            "x": rng.normal(0.2, 1, size=600),
            "c": rng.choice(["u", "v", "w"], 600),
            "ok": rng.random(600) < 0.6,
        }
    )
    profile = ReferenceProfile.from_table(ref)
    assert profile.exact
    path = profile.save(tmp_path / "profile.json")
    loaded = load_reference(path)
    assert isinstance(loaded, ReferenceProfile)
    assert drift_report(loaded, cur).to_dict() == drift_report(ref, cur).to_dict()


def test_profile_rejects_garbage(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a drift profile"):
        ReferenceProfile.from_dict({"columns": {}})
    bad = {
        "format": "tradeloop.drift_profile",
        "version": 1,
        "columns": {"x": {"type": "numeric", "n": 3}},
    }
    with pytest.raises(BadInput, match="column 'x' is malformed"):
        ReferenceProfile.from_dict(bad)
    (tmp_path / "p.json").write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        ReferenceProfile.load(tmp_path / "p.json")
    with pytest.raises(BadInput, match="sketch_size"):
        ReferenceProfile.from_table({"x": np.arange(10.0)}, sketch_size=3)


# ---------------------------------------------------------------------------- files, reports


def _pair(rng: np.random.Generator, n: int, shift: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    def table(s: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ret": rng.normal(0.0, 0.01, size=n),
                "vol": rng.lognormal(-4, 0.5, size=n) * (1 + s),
                "rsi": rng.uniform(0, 100, size=n),
                "z": rng.standard_t(5, size=n),
                "regime": rng.integers(0, 3, size=n),
                "venue": rng.choice(["NYSE", "NASDAQ", "ARCA"], size=n),
            }
        )

    return table(0.0), table(shift)


@pytest.mark.parametrize("suffixes", [(".csv", ".parquet"), (".parquet", ".csv")])
def test_file_pair_flags_only_the_shifted_column(
    tmp_path: Path, rng: np.random.Generator, suffixes: tuple[str, str]
) -> None:
    ref, cur = _pair(rng, 20_000, shift=0.25)
    paths = [tmp_path / f"ref{suffixes[0]}", tmp_path / f"cur{suffixes[1]}"]
    for df, p in zip((ref, cur), paths, strict=True):
        df.write_csv(p) if p.suffix == ".csv" else df.write_parquet(p)
    report = compare_files(*paths)
    assert report.drifted_columns == ["vol"]
    assert not report.dataset_drift
    assert len(report.columns) == 6


def test_file_pair_without_shift_flags_nothing(tmp_path: Path, rng: np.random.Generator) -> None:
    ref, cur = _pair(rng, 20_000, shift=0.0)
    ref.write_parquet(tmp_path / "a.parquet")
    cur.write_csv(tmp_path / "b.csv")
    report = compare_files(tmp_path / "a.parquet", tmp_path / "b.csv")
    assert report.drifted_columns == [] and report.share == 0.0


def test_report_dict_and_html(rng: np.random.Generator) -> None:
    ref = {
        "<b>x</b>": rng.normal(size=1200),
        "y": rng.normal(size=1200),
        "when": np.arange(1200).astype("datetime64[ms]"),
    }
    cur = {
        "<b>x</b>": rng.normal(1, 1, size=900),
        "y": rng.normal(size=900),
        "when": np.arange(900).astype("datetime64[ms]"),
    }
    report = drift_report(ref, cur)
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["dataset_drift"] is True and d["number_of_drifted_columns"] == 1
    assert (
        d["columns"]["<b>x</b>"]["method"] == "wasserstein" and d["columns"]["<b>x</b>"]["drifted"]
    )
    assert set(d["skipped"]) == {"when"}
    page = report.to_html()
    assert (
        page.startswith("<!doctype html>")
        and "&lt;b&gt;x&lt;/b&gt;" in page
        and "<b>x</b>" not in page
    )
    assert "Wasserstein distance (normed)" in page and "Dataset: DRIFT" in page
    assert isinstance(report, DriftReport)


def test_bad_input(tmp_path: Path, rng: np.random.Generator) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load_table(tmp_path / "missing.csv")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(BadInput, match="unknown format"):
        load_table(tmp_path / "data.xlsx")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(BadInput, match="cannot read"):
        load_table(tmp_path / "broken.parquet")
    with pytest.raises(BadInput, match="no columns in common"):
        drift_report({"a": np.ones(5)}, {"b": np.ones(5)})
    with pytest.raises(BadInput, match="not in the current: a"):
        drift_report({"a": np.ones(5)}, {"b": np.ones(5)}, columns=["a"])
    with pytest.raises(BadInput, match="numeric in the reference but String"):
        drift_report({"a": rng.normal(size=50)}, {"a": np.array(["x"] * 50)})
    with pytest.raises(BadInput, match="expected a polars or pandas DataFrame"):
        drift_report([1, 2, 3], {"a": np.ones(3)})
    with pytest.raises(BadInput, match="1-D"):
        drift_report({"a": np.ones((3, 2))}, {"a": np.ones(3)})
    with pytest.raises(BadInput, match="no column could be tested"):
        drift_report({"t": [f"t{i}" for i in range(20)]}, {"t": [f"u{i}" for i in range(20)]})


# ------------------------------------------------------------------------------ calibration


def _false_alarm_bound(trials: int, alpha: float = 0.05) -> float:
    """alpha plus 2.5 binomial standard errors: the estimate's own noise, nothing more."""
    return alpha + 2.5 * math.sqrt(alpha * (1 - alpha) / trials)


def test_p_value_methods_false_alarm_at_most_5_percent(rng: np.random.Generator) -> None:
    trials = 1500
    ks = np.mean(
        [
            ks_pvalue(
                Sample.from_unsorted(rng.normal(size=200)),
                Sample.from_unsorted(rng.normal(size=300)),
            )
            <= 0.05
            for _ in range(trials)
        ]
    )
    assert ks <= _false_alarm_bound(trials)
    probs = [0.4, 0.3, 0.2, 0.1]
    trials_c = 4000
    chi = np.mean(
        [
            chisquare_pvalue(rng.multinomial(500, probs), rng.multinomial(400, probs)) < 0.05
            for _ in range(trials_c)
        ]
    )
    z = np.mean(
        [
            z_pvalue(rng.multinomial(500, [0.3, 0.7]), rng.multinomial(400, [0.3, 0.7])) < 0.05
            for _ in range(trials_c)
        ]
    )
    assert chi <= _false_alarm_bound(trials_c)
    assert z <= _false_alarm_bound(trials_c)
    # Evidently's goodness-of-fit chi-square, by contrast, is far off at similar sample sizes
    gof = np.mean([_evidently_chisquare(500, 400, probs, rng) < 0.05 for _ in range(1000)])
    assert gof > 0.15


def _evidently_chisquare(n: int, m: int, probs: list[float], rng: np.random.Generator) -> float:
    """Evidently's chi-square: current counts against reference counts scaled by m / n."""
    ref, cur = rng.multinomial(n, probs), rng.multinomial(m, probs)
    return float(stats.chisquare(cur, ref * (m / n)).pvalue)


def test_distance_methods_rarely_alarm_without_shift(rng: np.random.Generator) -> None:
    alarms = {"wasserstein": 0, "psi": 0, "jensenshannon": 0}
    trials = 60
    for _ in range(trials):
        ref = {"x": rng.normal(size=2000)}
        cur = {"x": rng.normal(size=1000)}
        for method in alarms:
            alarms[method] += drift_report(ref, cur, DriftSpec(method=method)).column("x").drifted
    assert all(count / trials <= 0.05 for count in alarms.values()), alarms
