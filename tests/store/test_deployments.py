from __future__ import annotations

import pytest

from tradeloop.errors import BadInput
from tradeloop.store import Store
from tradeloop.store import deployments as dep


def test_apply_is_atomic_audited_and_idempotent(store: Store) -> None:
    want = [
        dep.Deployed("m", "champion", "1", "live", 90),
        dep.Deployed("m", "challenger", "2", "live", 10),
    ]
    dep.apply(store, "m", want, actor="t", reason="canary step 1")
    assert sorted(dep.current(store, "m"), key=lambda d: d.variant) == sorted(
        want, key=lambda d: d.variant
    )
    n = len(store.audit.list())
    dep.apply(store, "m", list(reversed(want)), actor="t", reason="same again")
    assert len(store.audit.list()) == n  # nothing changed, nothing written
    entry = store.audit.list()[-1]
    assert entry.action == "deployment.apply" and entry.payload["reason"] == "canary step 1"


@pytest.mark.parametrize(
    "bad, message",
    [
        ([dep.Deployed("m", "champion", "1", "live", 80)], "add up to 100"),
        (
            [
                dep.Deployed("m", "champion", "1", "live", 100),
                dep.Deployed("m", "champion", "2", "shadow", 0),
            ],
            "once",
        ),
        ([dep.Deployed("m", "boss", "1", "live", 100)], "variant"),  # type: ignore[arg-type]
        ([dep.Deployed("m", "champion", "1", "live", 101)], "weight"),
    ],
)
def test_bad_states_are_refused_and_nothing_changes(
    store: Store, bad: list[dep.Deployed], message: str
) -> None:
    dep.apply(store, "m", [dep.Deployed("m", "champion", "1", "live", 100)], actor="t", reason="")
    with pytest.raises(BadInput, match=message):
        dep.apply(store, "m", bad, actor="t", reason="")
    assert dep.current(store, "m") == [dep.Deployed("m", "champion", "1", "live", 100)]
