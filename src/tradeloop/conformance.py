"""The loop every plug-in conformance suite shares: run each check on each case, and collect
the failures as sentences instead of stopping at the first.

A suite's checks raise its own error type for a broken rule; anything else a check raises is
a crash of the member under test, reported too, so that one crash cannot hide the other rules.

    collect_failures({"fit_returns_self": lambda task: ...}, {"regression": "regression"},
                     AdapterConformanceError)
    # -> ["fit_returns_self[regression]: fit returned None"]  (empty: conforms)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

C = TypeVar("C")

__all__ = ["collect_failures"]


def collect_failures(
    checks: Mapping[str, Callable[[C], None]],
    cases: Mapping[str, C],
    expected: type[Exception],
) -> list[str]:
    """Every check on every case; failures as `check[case]: message`, cases outermost."""
    failures: list[str] = []
    for case_name, case in cases.items():
        for name, check in checks.items():
            try:
                check(case)
            except expected as exc:
                failures.append(f"{name}[{case_name}]: {exc}")
            except Exception as exc:  # a crash is a failure too, and must not hide the rest
                failures.append(f"{name}[{case_name}]: raised {type(exc).__name__}: {exc}")
    return failures
