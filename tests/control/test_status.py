"""`tradeloop status` for controllers: last run, last success, and who leads now."""

from __future__ import annotations

from datetime import timedelta

from tradeloop.clock import SimulatedClock
from tradeloop.control.manager import Manager, lease_name
from tradeloop.control.reconciler import Context, Result
from tradeloop.control.status import controller_status
from tradeloop.store import Store, leases


class Flaky:
    name, interval = "trainer", timedelta(minutes=1)

    def __init__(self) -> None:
        self.fail = False

    def reconcile(self, ctx: Context) -> Result:
        if self.fail:
            raise RuntimeError("registry unreachable")
        return Result(message="nothing to do")


def test_status_reports_runs_and_lease_holders(store: Store, clock: SimulatedClock) -> None:
    assert controller_status(store) == []
    trainer = Flaky()
    m = Manager(store, clock, [trainer], holder="host-a:1:m", lease_ttl=timedelta(seconds=30))
    t0 = clock.now()
    m.run_once()
    clock.advance(timedelta(minutes=1))
    trainer.fail = True
    m.run_once()
    # A deployer that has never run here but whose lease another replica holds.
    assert leases.acquire(store, lease_name("deployer"), "host-b:2:m", timedelta(seconds=30))

    deployer, st = controller_status(store)
    assert st["controller"] == "trainer"
    assert st["last_run_at"] == t0 + timedelta(minutes=1)
    assert st["outcome"] == "error" and st["message"].startswith("RuntimeError: registry")
    assert st["duration_s"] >= 0
    assert st["last_success_at"] == t0
    assert st["holder"] == "host-a:1:m"
    assert st["lease_expires_at"] == clock.now() + timedelta(seconds=30)
    assert deployer["controller"] == "deployer" and deployer["outcome"] is None
    assert deployer["holder"] == "host-b:2:m" and deployer["last_run_at"] is None

    clock.advance(timedelta(minutes=5))  # nobody renewed: nobody leads
    assert [s["holder"] for s in controller_status(store)] == [None, None]
