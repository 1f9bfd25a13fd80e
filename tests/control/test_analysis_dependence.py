"""`analysis.dependence: per_bar_hac` judges per-bar means, not each symbol-bar as a draw."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from tradeloop.control.analysis import Samples, observe
from tradeloop.control.rollout_state import RolloutState
from tradeloop.spec import Spec

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _spec(dependence: str) -> Spec:
    return Spec.model_validate(
        {"name": "m", "deployment": {"analysis": {"dependence": dependence, "min_samples": 10}}}
    )


def test_per_bar_hac_counts_bars_and_widens_the_interval() -> None:
    rng = np.random.default_rng(5)
    bars, symbols = 200, 4
    common = rng.standard_normal(bars)  # the market: every symbol moves with it

    def arm(shift: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        values = np.repeat(common, symbols) + 0.1 * rng.standard_normal(bars * symbols) + shift
        return values, np.repeat(np.arange(bars) * 3_600_000_000, symbols)

    (a, ta), (b, tb) = arm(0.0), arm(0.0)
    state = RolloutState("2", "step", 0, NOW)
    samples = Samples(a, b, symbols, symbols, None, ta, tb)
    _, naive = observe(_spec("independent"), state, samples, NOW, "approved")
    _, robust = observe(_spec("per_bar_hac"), state, samples, NOW, "approved")
    assert naive is not None and robust is not None
    assert naive.n_champion == bars * symbols and robust.n_champion == bars
    assert robust.mean_champion is not None and naive.mean_champion is not None
    assert abs(robust.mean_champion - naive.mean_champion) < 1e-9
    assert (robust.ci_upper or 0) - (robust.ci_lower or 0) > (naive.ci_upper or 0) - (
        naive.ci_lower or 0
    )
