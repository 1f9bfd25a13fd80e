"""Every registered drift method passes the shared conformance suite; the suite catches breakage."""

from __future__ import annotations

import numpy as np
import pytest

from tradeloop.errors import BadInput
from tradeloop.monitoring.drift import METHODS, DriftTest, drift_method, register_drift_method
from tradeloop.monitoring.drift.conformance import check_drift_method
from tradeloop.monitoring.drift.methods import ChiSquare, Wasserstein


@pytest.mark.parametrize("name", sorted(METHODS))
def test_registered_method_conforms(name: str) -> None:
    failures = check_drift_method(METHODS[name])
    assert failures == [], "\n".join(failures)


def test_the_builtin_methods_are_registered() -> None:
    assert sorted(METHODS) == ["chisquare", "jensenshannon", "ks", "psi", "wasserstein", "z"]
    assert drift_method("ks").statistic == "p_value"
    with pytest.raises(BadInput, match="unknown drift method 'nope'"):
        drift_method("nope")
    with pytest.raises(BadInput, match="already registered"):
        register_drift_method(Wasserstein())


class _BackwardsWasserstein(Wasserstein):
    """Declares a distance but reads it as a p-value: every verdict is upside down."""

    name = "backwards"

    def is_drift(self, statistic: float, threshold: float) -> bool:
        return statistic < threshold


class _Noisy(ChiSquare):
    """A different answer on every call."""

    name = "noisy"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(1)

    def on_counts(self, reference: np.ndarray, current: np.ndarray) -> float:
        return float(self.rng.random())


class _Undeclared(DriftTest):
    name = "undeclared"


def test_the_suite_reports_broken_methods() -> None:
    backwards = check_drift_method(_BackwardsWasserstein())
    assert any("the declared way round" in f for f in backwards), backwards
    noisy = check_drift_method(_Noisy())
    assert any("not deterministic" in f for f in noisy), noisy
    undeclared = check_drift_method(_Undeclared())
    assert any("statistic must be" in f for f in undeclared), undeclared


def test_the_spec_names_exactly_the_selectable_registered_methods() -> None:
    """A method a spec may name is registered, and every selectable one can be named."""
    from tradeloop.monitoring.drift import METHODS
    from tradeloop.spec import DRIFT_METHODS

    selectable = {m.name for m in METHODS.values() if m.selectable}
    assert set(DRIFT_METHODS) - {"auto"} == selectable
