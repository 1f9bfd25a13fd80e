"""A lease whose holder process died is free at once, to `holder_of` as to `acquire`."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

from tradeloop.store import Store, leases


def test_a_dead_holders_lease_is_free(store: Store) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = f"{socket.gethostname()}:{proc.pid}:x"  # a holder id naming that process
    assert leases.acquire(store, "train:m", dead, timedelta(minutes=10))
    assert leases.holder_of(store, "train:m") is None  # unexpired, but its process is gone
    assert leases.holder_of(store, "train:m", stale=lambda _h: False) == dead
    mine = leases.process_holder("me")
    assert leases.acquire(store, "train:m", mine, timedelta(seconds=30))
    assert leases.holder_of(store, "train:m") == mine  # a live holder is reported
    assert not leases.acquire(store, "train:m", dead, timedelta(seconds=30))
