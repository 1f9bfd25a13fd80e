"""The conformance suite every drift method passes, built-in or plug-in.

    failures = check_drift_method(MyMethod())
    assert not failures, "\\n".join(failures)

`check_drift_method` returns a list of failures (empty when the method conforms) rather than
raising, so a caller sees every broken rule at once. It checks the contract of `DriftTest`:

- the declarations: a name, a statistic kind, a positive finite default threshold (below 1 for
  a p-value), column kinds, and an `is_drift` that reads the statistic the declared way round;
- for each column kind the method applies to, on exact and (numeric) sketched references:
  identical samples do not drift, a clearly shifted sample does, the result is deterministic
  and in the declared range (p-values in [0, 1], distances finite and >= 0), `exact` is True
  exactly when the reference is;
- NaN and infinities never reach a method (`Sample.from_unsorted` drops them), so a current
  sample with them gives the same result as without; constant columns, single values and a
  single category give a finite statistic, and no drift when both sides agree.

Fixed seeds: the suite itself is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from tradeloop.monitoring.drift.methods import DriftTest
from tradeloop.monitoring.drift.profiles import NumericProfile
from tradeloop.monitoring.drift.samples import Sample

__all__ = ["check_drift_method"]

_SEED = 20240611
_N = 2000
_SKETCH_N = 20_000
_SKETCH_SIZE = 64  # the smallest profiles allow: a sketch for sure


def check_drift_method(method: DriftTest) -> list[str]:
    """Every way `method` breaks the drift-method contract (module docstring); [] if none."""
    failures = _declarations(method)
    if failures:
        return failures  # the behavioural checks read the declarations
    if "numeric" in method.kinds:
        failures += _numeric(method)
    if "categorical" in method.kinds:
        failures += _categorical(method)
    return failures


def _declarations(m: DriftTest) -> list[str]:
    out: list[str] = []
    if not isinstance(getattr(m, "name", None), str) or not m.name:
        return ["name: must be a non-empty string"]
    if getattr(m, "statistic", None) not in ("p_value", "distance"):
        out.append(f"{m.name}: statistic must be 'p_value' or 'distance'")
    t = getattr(m, "default_threshold", None)
    if not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
        out.append(f"{m.name}: default_threshold must be a positive finite number, got {t!r}")
    elif m.statistic == "p_value" and t >= 1:
        out.append(f"{m.name}: a p-value threshold must be below 1, got {t!r}")
    kinds = getattr(m, "kinds", None)
    if not kinds or not set(kinds) <= {"numeric", "categorical"}:
        out.append(f"{m.name}: kinds must be a non-empty subset of numeric, categorical")
    if out:
        return out
    t = m.default_threshold
    low, high = (0.0, 1.0) if m.statistic == "p_value" else (0.0, 1e6)
    no_drift, drift = (high, low) if m.statistic == "p_value" else (low, high)
    if m.is_drift(no_drift, t) or not m.is_drift(drift, t):
        out.append(f"{m.name}: is_drift does not read a {m.statistic} the declared way round")
    if m.is_drift(t, t) != m.drift_at_threshold:
        out.append(f"{m.name}: is_drift(threshold, threshold) disagrees with drift_at_threshold")
    return out


def _in_range(m: DriftTest, what: str, statistic: float) -> list[str]:
    ok = math.isfinite(statistic) and statistic >= 0
    if m.statistic == "p_value":
        ok = ok and statistic <= 1
    return [] if ok else [f"{m.name}: {what}: statistic {statistic!r} out of range"]


def _run(m: DriftTest, what: str, fn: Callable[[], tuple[float, bool]]) -> tuple[float, bool]:
    """fn() twice; raises _Failed with a message if it raises or is not deterministic."""
    try:
        first, second = fn(), fn()
    except Exception as exc:  # a plug-in may raise anything: report it, do not crash the suite
        raise _Failed(f"{m.name}: {what}: raised {type(exc).__name__}: {exc}") from exc
    same = first == second or all(
        isinstance(x, float) and math.isnan(x) for x in (first[0], second[0])
    )
    if not same:
        raise _Failed(f"{m.name}: {what}: not deterministic ({first} then {second})")
    return float(first[0]), bool(first[1])


class _Failed(Exception):
    pass


def _expect(
    m: DriftTest,
    what: str,
    fn: Callable[[], tuple[float, bool]],
    *,
    drift: bool | None,
    exact: bool | None = None,
) -> list[str]:
    try:
        statistic, is_exact = _run(m, what, fn)
    except _Failed as exc:
        return [str(exc)]
    out = _in_range(m, what, statistic)
    if out:
        return out
    if drift is not None and m.is_drift(statistic, m.default_threshold) != drift:
        verdict = "drift" if drift else "no drift"
        out.append(f"{m.name}: {what}: expected {verdict}, statistic {statistic:.6g}")
    if exact is not None and is_exact != exact:
        out.append(f"{m.name}: {what}: exact is {is_exact}, expected {exact}")
    return out


def _numeric(m: DriftTest) -> list[str]:
    rng = np.random.default_rng(_SEED)
    ref = rng.normal(size=_N)
    big = rng.normal(size=_SKETCH_N)
    cases = [
        ("exact", NumericProfile.of(Sample.from_unsorted(ref), None, compress=False), ref),
        ("sketch", NumericProfile.of(Sample.from_unsorted(big), _SKETCH_SIZE, compress=True), big),
    ]
    out: list[str] = []
    for label, profile, raw in cases:
        exact = label == "exact"
        same = Sample.from_unsorted(raw)
        shifted = Sample.from_unsorted(rng.normal(1.0, 1.0, size=_N))
        identical = partial(m.on_numeric, profile, same)
        out += _expect(m, f"{label}, identical", identical, drift=False, exact=exact)
        moved = partial(m.on_numeric, profile, shifted)
        out += _expect(m, f"{label}, shifted", moved, drift=True, exact=exact)
    profile = cases[0][1]
    dirty = ref.copy()
    dirty[::40] = np.nan
    dirty[1::53] = np.inf
    with_nan, without = Sample.from_unsorted(dirty), Sample.from_unsorted(dirty[np.isfinite(dirty)])
    try:
        a = _run(m, "NaN", lambda: m.on_numeric(profile, with_nan))
        b = _run(m, "NaN", lambda: m.on_numeric(profile, without))
        if a != b:
            out.append(f"{m.name}: NaN and infinities change the result ({a} vs {b})")
    except _Failed as exc:
        out.append(str(exc))
    const = NumericProfile.of(Sample.from_unsorted(np.full(_N, 3.0)), None, compress=True)
    out += _expect(
        m,
        "constant, same constant",
        lambda: m.on_numeric(const, Sample.from_unsorted(np.full(_N // 2, 3.0))),
        drift=False,
    )
    out += _expect(
        m,
        "constant, other constant",
        lambda: m.on_numeric(const, Sample.from_unsorted(np.full(_N // 2, 4.0))),
        drift=True,
    )
    one = Sample.from_unsorted(np.array([0.1]))
    out += _expect(m, "one current value", lambda: m.on_numeric(profile, one), drift=None)
    return out


def _categorical(m: DriftTest) -> list[str]:
    """Counts over shared categories, and a two-valued numeric column (per-value counts)."""
    ref = np.array([700, 300])
    out = _expect(m, "counts, identical", lambda: (m.on_counts(ref, ref.copy()), True), drift=False)
    out += _expect(
        m, "counts, shifted", lambda: (m.on_counts(ref, np.array([300, 700])), True), drift=True
    )
    out += _expect(
        m,
        "counts, one category",
        lambda: (m.on_counts(np.array([500]), np.array([400])), True),
        drift=False,
    )
    values = np.repeat([0.0, 1.0], ref)
    profile = NumericProfile.of(Sample.from_unsorted(values), None, compress=True)
    out += _expect(
        m,
        "two values, identical",
        lambda: m.on_numeric(profile, Sample.from_unsorted(values)),
        drift=False,
        exact=True,
    )
    out += _expect(
        m,
        "two values, shifted",
        lambda: m.on_numeric(profile, Sample.from_unsorted(np.repeat([0.0, 1.0], [300, 700]))),
        drift=True,
        exact=True,
    )
    return out
