"""False-alarm rates of each drift method when nothing has drifted, at default thresholds.

    .venv/bin/python bench/drift_calibration.py [--trials 1000]

Both samples are drawn from the same distribution, so every alarm is false. A p-value method at
threshold 0.05 should alarm at most 5% of the time; the distance methods (fixed thresholds)
alarm less as the samples grow. Evidently's chi-square (current counts against reference counts
taken as exact) is shown beside ours (homogeneity of the two samples) to show why we differ.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
from scipy import stats

from tradeloop.monitoring.drift import METHODS, drift_report
from tradeloop.monitoring.drift.stattests import z_pvalue
from tradeloop.spec import DriftSpec

SIZES = [(200, 200), (1000, 500), (5000, 500), (5000, 5000), (50_000, 2000)]
CATEGORIES = [0.4, 0.3, 0.2, 0.1]


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval for a rate k/n."""
    if n == 0:
        return 0.0, 1.0
    z = 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def chisquare_gof_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Evidently's chi-square: current counts against reference counts scaled to the current
    size (scipy.stats.chisquare), the reference taken as exact. A category absent from the
    reference but present now is certain drift (p = 0)."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if len(ref) < 2:
        return 1.0
    expected = ref * (cur.sum() / ref.sum())
    if np.any((expected == 0) & (cur > 0)):
        return 0.0
    used = expected > 0
    return float(stats.chisquare(cur[used], expected[used]).pvalue)


def alarms(method: str, n_ref: int, n_cur: int, trials: int, rng: np.random.Generator) -> int:
    """How many of `trials` same-distribution pairs the method flags (one column per trial)."""
    if method in ("chisquare", "z", "chisquare (Evidently)"):
        probs = CATEGORIES if method != "z" else [0.3, 0.7]
        ref = {f"t{i}": rng.choice(len(probs), n_ref, p=probs).astype(str) for i in range(trials)}
        cur = {f"t{i}": rng.choice(len(probs), n_cur, p=probs).astype(str) for i in range(trials)}
        if method != "chisquare":  # not selectable in a spec: straight from the counts
            test = z_pvalue if method == "z" else chisquare_gof_pvalue
            flagged = 0
            for name in ref:
                keys = sorted(set(ref[name]) | set(cur[name]))
                r = np.array([np.sum(ref[name] == k) for k in keys])
                c = np.array([np.sum(cur[name] == k) for k in keys])
                flagged += test(r, c) < 0.05
            return flagged
    else:
        ref = {f"t{i}": rng.normal(size=n_ref) for i in range(trials)}
        cur = {f"t{i}": rng.normal(size=n_cur) for i in range(trials)}
    return len(drift_report(ref, cur, DriftSpec(method=method)).drifted_columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    methods = [
        "ks",
        "chisquare",
        "chisquare (Evidently)",
        "z",
        "wasserstein",
        "psi",
        "jensenshannon",
    ]
    start = time.perf_counter()
    print(f"false-alarm rate under no drift, {args.trials} trials each (95% interval)\n")
    head = f"{'method':<22} {'threshold':>9} " + " ".join(f"{f'{n}/{m}':>19}" for n, m in SIZES)
    print(head)
    print("-" * len(head))
    for method in methods:
        info = METHODS[method.split()[0]]
        cells = []
        for n_ref, n_cur in SIZES:
            trials = (
                args.trials if n_ref * args.trials <= 20_000_000 else max(100, 20_000_000 // n_ref)
            )
            k = alarms(method, n_ref, n_cur, trials, rng)
            lo, hi = wilson(k, trials)
            cells.append(f"{k / trials:6.1%} [{lo:4.1%},{hi:5.1%}]")
        print(f"{method:<22} {info.default_threshold:>9g} " + " ".join(f"{c:>19}" for c in cells))
    print(f"\ncolumns are reference/current sizes; {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
