from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from tests.cli.conftest import Run

CSV_HEAD = ",Date,Open,High,Low,Close,Volume\n"
CSV_ROWS = [
    "0,2024-01-02,10,11,9,10.5,100",
    "1,2024-01-03,10.5,11.5,10,11,120",
    "2,2024-01-04,11,12,10.5,11.5,90",
]


def _csv_project(root: Path, rows: list[str]) -> None:
    root.mkdir()
    (root / "prices.csv").write_text(CSV_HEAD + "\n".join(rows) + "\n")
    (root / "tradeloop.yaml").write_text(
        "name: csvtest\n"
        "data:\n  source: csv\n  frequency: 1d\n  calendar: weekdays\n  path: prices.csv\n"
        "  columns: {timestamp: Date, symbol_value: TEST, open: Open, high: High, low: Low,"
        " close: Close, volume: Volume}\n"
    )


def test_init_validate_check_snapshot_audit(run: Run, project: Path) -> None:
    log = subprocess.run(["git", "log", "--oneline"], cwd=project, capture_output=True, text=True)
    assert "tradeloop init" in log.stdout
    r = run("validate", "--json", cwd=project)
    assert r.code == 0 and r.json()["name"] == "proj"
    r = run("data", "check", cwd=project)
    assert r.code == 0 and "ok: data accepted" in r.out
    r = run("data", "snapshot", "--json", cwd=project)
    snap = r.json()
    assert r.code == 0 and set(snap) >= {"hash", "rows", "symbols", "start", "end"}
    assert snap["rows"] == 12000 and snap["symbols"] == ["AAA", "BBB", "CCC", "DDD"]
    again = run("data", "snapshot", "--json", cwd=project).json()
    assert again["hash"] == snap["hash"]
    r = run("audit", "list", "--json", cwd=project)
    assert [e["action"] for e in r.json()] == ["data.snapshot", "data.snapshot"]
    assert run("audit", "verify", cwd=project).code == 0


def test_spec_option_from_elsewhere(run: Run, project: Path, tmp_path: Path) -> None:
    r = run("validate", "--spec", str(project / "tradeloop.yaml"), cwd=tmp_path)
    assert r.code == 0


def test_misspelt_key_exits_2_naming_key_and_line(run: Run, project: Path) -> None:
    spec = project / "tradeloop.yaml"
    text = spec.read_text().replace("  n_estimators: 150", "  n_estimatorz: 150")
    spec.write_text(text)
    line = text.splitlines().index("  n_estimatorz: 150") + 1
    r = run("validate", cwd=project)
    assert r.code == 2
    assert (
        f"tradeloop.yaml:{line}: model.n_estimatorz: unknown key (did you mean n_estimators?)"
        in r.err
    )
    assert run("data", "check", cwd=project).code == 2


def test_duplicate_timestamp_csv_exits_2_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    root = tmp_path / "dup"
    _csv_project(root, [*CSV_ROWS, "3,2024-01-04,11,12,10.5,11.5,90"])
    r = run("data", "check", "--json", cwd=root)
    assert r.code == 2 and r.json()["errors"][0]["code"] == "duplicate_timestamps"
    r = run("data", "snapshot", cwd=root)
    assert r.code == 2 and "duplicate_timestamps" in r.err
    assert not (root / ".tradeloop" / "snapshots").exists()


def test_high_below_low_csv_exits_2(run: Run, tmp_path: Path) -> None:
    root = tmp_path / "hl"
    _csv_project(root, [*CSV_ROWS[:2], "2,2024-01-04,11,10,10.5,11.5,90"])
    r = run("data", "snapshot", cwd=root)
    assert r.code == 2 and "high_below_open_close" in r.err
    assert not (root / ".tradeloop" / "snapshots").exists()


def test_audit_verify_catches_an_edited_row(run: Run, project: Path) -> None:
    assert run("data", "snapshot", cwd=project).code == 0
    assert run("data", "snapshot", cwd=project).code == 0
    db = sqlite3.connect(project / ".tradeloop" / "tradeloop.db")
    db.execute("update audit_log set payload = '{\"rows\": 1}' where id = 1")
    db.commit()
    db.close()
    r = run("audit", "verify", cwd=project)
    assert r.code == 1 and "entry 1" in r.err
    r = run("audit", "verify", "--json", cwd=project)
    assert r.json()["first_bad_id"] == 1


def test_init_refuses_to_overwrite(run: Run, project: Path) -> None:
    r = run("init", str(project))
    assert r.code == 2 and "already exists" in r.err


def test_bad_arguments_exit_2(run: Run) -> None:
    assert run("data", "check", "--nope").code == 2
    r = run("validate")
    assert r.code == 2 and "no spec file" in r.err
