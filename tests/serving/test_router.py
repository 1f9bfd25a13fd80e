"""Routing: weights hold over many keys, keys are sticky, and weight changes move keys one way."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from tradeloop.serving.models import Served, Snapshot
from tradeloop.serving.router import BUCKETS, NoModel, Router, UnknownVariant, bucket
from tradeloop.store.deployments import Deployed


class FakeModel:
    """Stands in for LoadedModel: the router only reads the version."""

    def __init__(self, version: str) -> None:
        self.version = version


def snapshot(*rows: tuple[str, str, str, int], loaded: tuple[str, ...] | None = None) -> Snapshot:
    deployed = tuple(Deployed("m", v, ver, mode, w) for v, ver, mode, w in rows)  # type: ignore[arg-type]
    served: dict[str, Any] = {
        d.variant: Served(d, FakeModel(d.version))  # type: ignore[arg-type]
        for d in deployed
        if loaded is None or d.variant in loaded
    }
    return Snapshot("m", deployed, served)


KEYS = [f"key-{i}" for i in range(10_000)]


def assign(snap: Snapshot) -> dict[str, str]:
    router = Router()
    return {k: router.route(snap, k).variant for k in KEYS}


@pytest.mark.parametrize("challenger", [1, 10, 25, 50, 90])
def test_observed_split_matches_weights(challenger: int) -> None:
    snap = snapshot(
        ("champion", "1", "live", 100 - challenger), ("challenger", "2", "live", challenger)
    )
    share = Counter(assign(snap).values())["challenger"] / len(KEYS)
    # binomial sd at n=10k is at most 0.5 points; 1.5 points is a 3-sigma band
    assert abs(share - challenger / 100) < 0.015


def test_keys_are_sticky_and_stable_across_processes() -> None:
    snap = snapshot(("champion", "1", "live", 50), ("challenger", "2", "live", 50))
    first, second = assign(snap), assign(snap)
    assert first == second
    # blake2b, not hash(): a fixed key lands in a fixed bucket in every process
    assert [bucket(k) for k in ("AAA", "BBB", "user-42")] == [
        bucket(k) for k in ("AAA", "BBB", "user-42")
    ]
    assert (
        bucket("AAA")
        == int.from_bytes(__import__("hashlib").blake2b(b"AAA", digest_size=8).digest(), "big")
        % BUCKETS
    )


def test_raising_the_challenger_moves_keys_only_toward_it() -> None:
    steps = [0, 10, 25, 50, 100]
    previous: dict[str, str] | None = None
    for w in steps:
        rows = [("champion", "1", "live", 100 - w)]
        if w:
            rows.append(("challenger", "2", "live", w))
        now = assign(snapshot(*rows))  # type: ignore[arg-type]
        if previous is not None:
            back = [k for k in KEYS if previous[k] == "challenger" and now[k] == "champion"]
            assert back == []
            moved = sum(previous[k] == "champion" and now[k] == "challenger" for k in KEYS)
            assert moved > 0
        previous = now


def test_keyless_requests_split_at_the_weights() -> None:
    snap = snapshot(("champion", "1", "live", 80), ("challenger", "2", "live", 20))
    router = Router(random.Random(3))
    share = Counter(router.route(snap, None).variant for _ in range(10_000))["challenger"] / 10_000
    assert abs(share - 0.2) < 0.015


def test_shadow_variants_get_no_live_traffic() -> None:
    snap = snapshot(("champion", "1", "live", 100), ("challenger", "2", "shadow", 0))
    assert set(assign(snap).values()) == {"champion"}


def test_an_unloaded_variant_cedes_its_traffic() -> None:
    snap = snapshot(
        ("champion", "1", "live", 50), ("challenger", "2", "live", 50), loaded=("champion",)
    )
    assert set(assign(snap).values()) == {"champion"}


def test_override_and_errors() -> None:
    snap = snapshot(("champion", "1", "live", 100), ("challenger", "2", "shadow", 0))
    router = Router()
    assert router.route(snap, "k", "challenger").variant == "challenger"
    with pytest.raises(UnknownVariant, match="not being served"):
        router.route(snapshot(("champion", "1", "live", 100)), "k", "challenger")
    with pytest.raises(NoModel):
        router.route(Snapshot("m"), "k")
