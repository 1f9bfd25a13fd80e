"""A canary over sticky units gives the challenger the share it claims, with 4, 12 and 500 units.

The weights are checked against the real router: every unit is routed and counted.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradeloop.control.canary_units import achievable, check_steps, check_weight, split_for
from tradeloop.errors import BadInput
from tradeloop.serving.models import Served, Snapshot
from tradeloop.serving.router import Router, bucket
from tradeloop.store.deployments import Deployed

INIT_SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]  # `tradeloop init`'s spec


class _Model:
    def __init__(self, version: str) -> None:
        self.version = version


def _canary(weight: int) -> Snapshot:
    rows = (
        Deployed("m", "champion", "1", "live", 100 - weight),
        Deployed("m", "challenger", "2", "live", weight),
    )
    served: dict[str, Any] = {d.variant: Served(d, _Model(d.version)) for d in rows}  # type: ignore[arg-type]  # the router reads only .version
    return Snapshot("m", rows, served)


def _challenger_units(units: list[str], weight: int) -> int:
    router = Router(units=units)
    snap = _canary(weight)
    return sum(router.route(snap, u).variant == "challenger" for u in units)


def test_hash_buckets_are_what_misled_four_symbols() -> None:
    # the finding: three of the four symbols hash above 90, so "10%" sent 75%
    assert sum(bucket(s) >= 90 for s in INIT_SYMBOLS) == 3
    assert _challenger_units(INIT_SYMBOLS, 25) == 1


def test_four_units_refuse_ten_percent_listing_the_choices() -> None:
    assert achievable(4) == [25, 50, 75]
    with pytest.raises(BadInput, match=r"10% cannot be expressed with 4 .*25, 50, 75"):
        check_weight(10, INIT_SYMBOLS, "deploy --weight")
    with pytest.raises(BadInput, match=r"steps\[0\]"):
        check_steps([10, 50], INIT_SYMBOLS)
    for w in (25, 50, 75):
        split = check_weight(w, INIT_SYMBOLS, "w")
        assert split.realized == w == 100 * _challenger_units(INIT_SYMBOLS, w) / 4


def test_twelve_units() -> None:
    units = [f"S{i:02d}" for i in range(1, 13)]
    choices = achievable(12)
    assert choices[:3] == [8, 17, 25] and len(choices) == 11
    with pytest.raises(BadInput, match="achievable weights: 8, 17, 25"):
        check_weight(10, units, "w")
    for w in choices:
        split = check_weight(w, units, "w")
        assert _challenger_units(units, w) == split.units
        assert abs(split.realized - w) <= 0.5


def test_five_hundred_units_express_every_percent_exactly_enough() -> None:
    units = [f"K{i}" for i in range(500)]
    assert achievable(500) == list(range(1, 100))
    for w in (1, 10, 33, 50, 99):
        split = check_weight(w, units, "w")
        assert split.units == _challenger_units(units, w) == 5 * w
        assert split.realized == w


def test_raising_the_weight_only_moves_units_to_the_challenger() -> None:
    units = [f"S{i:02d}" for i in range(1, 13)]
    before = {u for u in units if Router(units=units).route(_canary(25), u).variant == "challenger"}
    after = {u for u in units if Router(units=units).route(_canary(50), u).variant == "challenger"}
    assert before < after and len(before) == 3 and len(after) == 6


def test_split_for_rejects_out_of_range() -> None:
    assert split_for(0, 4) is not None and split_for(100, 4) is not None
    with pytest.raises(BadInput, match="between 0 and 100"):
        split_for(120, 4)


def test_status_counts_units_as_the_router_routes_them() -> None:
    from tradeloop.control.canary_units import challenger_units

    for units in (INIT_SYMBOLS, [f"S{i}" for i in range(12)], [f"K{i}" for i in range(500)]):
        for w in (1, 10, 25, 33, 50, 90, 99):
            assert challenger_units(units, w) == _challenger_units(units, w)


def test_status_reports_the_realized_share_of_units() -> None:
    from tradeloop.control.status_report import canary_split

    serving = [
        {"variant": "champion", "mode": "live", "weight": 75, "version": "1"},
        {"variant": "challenger", "mode": "live", "weight": 25, "version": "2"},
    ]
    assert canary_split(serving, INIT_SYMBOLS) == {
        "target_pct": 25,
        "total_units": 4,
        "units": 1,
        "realized_units_pct": 25.0,
    }
    serving[0]["weight"], serving[1]["weight"] = 90, 10  # set by hand around validate
    assert canary_split(serving, INIT_SYMBOLS)["realized_units_pct"] == 0.0  # type: ignore[index]
    assert canary_split(serving[:1], INIT_SYMBOLS) is None
