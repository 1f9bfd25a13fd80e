"""`tradeloop ingest` against the real NATS JetStream: bars published with nats-py are
persisted once, seen by `data check`/`snapshot`, and bad ones become dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.stream.helpers import SYMBOLS, add_stream, bar, need, publish_nats


def test_published_bars_are_persisted_and_seen_by_data_commands(run: Run, project: Path) -> None:
    need(4222, "NATS server")
    names = add_stream(project)
    before = run("data", "check", "--json", cwd=project).json()["rows"]
    good = [{"bars": [bar(s, i) for s in SYMBOLS]} for i in range(1, 11)]
    bad = [
        b"{not json",
        b'{"symbol": "AAA", "timestamp": "2023-05-08T00:00:00Z", "open": NaN}',
        {**bar("AAA", 11), "high": 1.0},  # high < low
        {k: v for k, v in bar("BBB", 11).items() if k != "volume"},
        {**bar("CCC", 11), "timestamp": "9999-12-31T00:00:00Z"},
        {**bar("DDD", 11), "close": "12"},
    ]
    publish_nats(names, good + bad + good[:3])  # the last three are redeliveries of the first
    r = run("ingest", "--until-idle", "--json", cwd=project)
    assert r.code == 0, r.err
    stats = r.json()
    assert stats["accepted"] == 40 and stats["duplicates"] == 12
    assert stats["dead_letters"] == {
        "not_json": 1,
        "not_finite": 1,
        "ohlc": 1,
        "fields": 1,
        "future": 1,
        "type": 1,
    }
    check = run("data", "check", "--json", cwd=project).json()
    assert check["rows"] == before + 40 and check["ok"]
    snap = run("data", "snapshot", "--json", cwd=project).json()
    assert snap["rows"] == before + 40

    again = run("ingest", "--until-idle", "--json", cwd=project).json()
    assert again["messages"] == 0  # everything was acked

    letters = run("ingest", "dead-letters", "--json", cwd=project).json()
    assert letters["counts"]["future"] == 1
    reasons = " | ".join(d["reason"] for d in letters["dead_letters"])
    assert "9999-12-31" in reasons and "not JSON" in reasons and "volume" in reasons
    assert any("{not json" in d["raw"] for d in letters["dead_letters"])


@pytest.mark.slow
def test_a_snapshot_hash_does_not_depend_on_arrival_order(run: Run, tmp_path: Path) -> None:
    need(4222, "NATS server")
    hashes = []
    for order, name in ((1, "a"), (-1, "b")):
        assert run("init", name).code == 0
        project = tmp_path / name
        names = add_stream(project, lateness="30d")
        msgs = [bar(s, i) for i in range(1, 25) for s in SYMBOLS][::order]
        publish_nats(names, msgs)
        r = run("ingest", "--until-idle", "--json", cwd=project)
        assert r.code == 0 and r.json()["accepted"] == 96, r.out + r.err
        hashes.append(run("data", "snapshot", "--json", cwd=project).json()["hash"])
    assert hashes[0] == hashes[1]


def test_ingest_without_a_stream_section_names_the_fix(run: Run, project: Path) -> None:
    r = run("ingest", "--until-idle", cwd=project)
    assert r.code == 2 and "data.stream is not set" in r.err


def test_a_bar_too_late_is_dead_lettered_with_the_window(run: Run, project: Path) -> None:
    need(4222, "NATS server")
    names = add_stream(project, lateness="2h")
    publish_nats(names, [bar("AAA", 10), bar("AAA", 9), bar("AAA", 5)])
    assert run("ingest", "--until-idle", cwd=project).code == 0
    letters = run("ingest", "dead-letters", "--json", cwd=project).json()["dead_letters"]
    assert [d["code"] for d in letters] == ["too_late"]
    assert "lateness window 2:00:00" in letters[0]["reason"]
    assert json.loads(letters[0]["raw"])["symbol"] == "AAA"
