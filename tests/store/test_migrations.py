"""The schema check that lets short commands skip Alembic, held to Alembic's own answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

from tradeloop.clock import SimulatedClock
from tradeloop.store import Store
from tradeloop.store.engine import (
    SCHEMA_HEAD,
    VERSION_TABLE,
    alembic_config,
    make_engine,
    schema_revision,
)


def test_schema_head_is_alembics_head() -> None:
    # A new migration must bump SCHEMA_HEAD, or opening a store would skip it.
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD


def test_schema_revision_before_and_after_migrating(db_url: str, clock: SimulatedClock) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as c:
            c.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
        assert schema_revision(engine) is None
    finally:
        engine.dispose()
    store = Store.open(db_url, clock)
    try:
        assert schema_revision(store.engine) == SCHEMA_HEAD
    finally:
        store.close()


def test_opening_a_migrated_store_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tradeloop.db'}"
    code = (
        "import sys\n"
        "from tradeloop.clock import WallClock\n"
        "from tradeloop.store import Store\n"
        f"Store.open({url!r}, WallClock()).close()\n"
        "first = 'alembic' in sys.modules\n"
        f"Store.open({url!r}, WallClock()).audit.verify()\n"
        "print(first, 'alembic' in sys.modules)\n"
    )
    # A fresh database needs Alembic; a second process opening it at head does not.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
    again = (
        "import sys\n"
        "from tradeloop.clock import WallClock\n"
        "from tradeloop.store import Store\n"
        f"Store.open({url!r}, WallClock()).audit.verify()\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", again], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
