from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from tests.gitops.conftest import count, git
from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.gitops.desired import Pin, read_desired
from tradeloop.gitops.promotion import (
    GitChange,
    RejectedVersion,
    close_proposal,
    proposals,
    propose_or_apply,
    record_rollback,
)
from tradeloop.gitops.repo import GitRepo, UncommittedEdits
from tradeloop.spec import GitSpec

DIRECT = GitSpec(branch="main", mode="direct")
PROPOSAL = GitSpec(branch="main", mode="proposal")
REASON = "canary analysis promote (ci [0.0012, 0.0040])"


def pin_at(project: Path, ref: str = "main") -> Pin | None:
    text = GitRepo(project).read_file(ref, "production.yaml")
    return Pin.from_yaml(text) if text is not None else None


def tradeloop_branches(project: Path) -> list[str]:
    return [b for b in GitRepo(project).branches() if b.startswith("tradeloop/")]


def test_direct_promotion_commits_the_pin_once(project: Path, clock: SimulatedClock) -> None:
    change = propose_or_apply(
        project, DIRECT, "demo", "3", REASON, clock=clock, details={"rollout": "canary 10/50"}
    )
    assert change.kind == "commit" and change.created and change.branch == "main"
    assert change.sha == GitRepo(project).head("main")
    assert change.to_dict()["sha"] == change.sha
    pin = pin_at(project)
    assert pin == Pin("demo", "3", None, clock.now(), REASON, ())
    [c] = GitRepo(project).log("main", "production.yaml")
    assert c.subject == "promote demo v3 to production" and c.time == clock.now()
    assert c.trailers == {
        "Tradeloop-Model": "demo",
        "Tradeloop-Version": "3",
        "Tradeloop-Action": "promote",
    }
    body = git(project, "log", "-1", "--format=%B")
    assert f"reason: {REASON}\nrollout: canary 10/50\n" in body
    assert git(project, "status", "--porcelain") == ""  # main is checked out: tree follows
    # idempotent: the loop calling again (later) changes nothing
    clock.advance(timedelta(minutes=5))
    again = propose_or_apply(project, DIRECT, "demo", "3", REASON, clock=clock)
    assert again == GitChange("noop", "main", change.sha, False, again.message)
    assert count(project, "main") == 2


def test_next_promotion_records_previous(project: Path, clock: SimulatedClock) -> None:
    propose_or_apply(project, DIRECT, "demo", "3", REASON, clock=clock)
    propose_or_apply(project, DIRECT, "demo", "4", "better", clock=clock)
    pin = pin_at(project)
    assert pin is not None and (pin.version, pin.previous) == ("4", "3")
    [c, _] = GitRepo(project).log("main", "production.yaml")
    assert c.trailers["Tradeloop-Previous"] == "3"


def test_direct_promotion_refuses_over_uncommitted_edits(
    project: Path, clock: SimulatedClock
) -> None:
    propose_or_apply(project, DIRECT, "demo", "3", REASON, clock=clock)
    (project / "production.yaml").write_text("model: demo\nversion: '2'  # by hand\n")
    with pytest.raises(UncommittedEdits):
        propose_or_apply(project, DIRECT, "demo", "4", REASON, clock=clock)
    assert pin_at(project) == Pin("demo", "3", None, clock.now(), REASON, ())


def test_proposal_mode_opens_one_proposal_per_target(project: Path, clock: SimulatedClock) -> None:
    main = git(project, "rev-parse", "main").strip()
    t0 = clock.now()
    changes = []
    for _ in range(5):  # the controller's loop, until someone merges
        changes.append(propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock))
        clock.advance(timedelta(minutes=1))
    assert [c.created for c in changes] == [True, False, False, False, False]
    assert {c.kind for c in changes} == {"proposal"}
    assert {c.sha for c in changes} == {changes[0].sha}
    assert tradeloop_branches(project) == ["tradeloop/promote-demo-v3"]
    assert count(project, "tradeloop/promote-demo-v3") == 2
    assert git(project, "rev-parse", "main").strip() == main  # nothing on the tracked branch
    assert (
        git(project, "status", "--porcelain") == "" and not (project / "production.yaml").exists()
    )
    assert pin_at(project, "tradeloop/promote-demo-v3") == Pin("demo", "3", None, t0, REASON, ())
    [p] = proposals(project, PROPOSAL)
    assert (p.branch, p.model, p.version, p.state, p.behind) == (
        "tradeloop/promote-demo-v3",
        "demo",
        "3",
        "open",
        False,
    )
    assert p.reason == REASON and p.to_dict()["state"] == "open"


def test_concurrent_proposers_make_one_branch(project: Path, clock: SimulatedClock) -> None:
    n = 4
    barrier = threading.Barrier(n)
    results: list[GitChange] = []

    def propose() -> None:
        barrier.wait()
        results.append(propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock))

    threads = [threading.Thread(target=propose) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n and sum(r.created for r in results) == 1
    assert {r.sha for r in results} == {GitRepo(project).head("tradeloop/promote-demo-v3")}
    assert tradeloop_branches(project) == ["tradeloop/promote-demo-v3"]


def test_merging_the_proposal_makes_it_desired(project: Path, clock: SimulatedClock) -> None:
    propose_or_apply(project, DIRECT, "demo", "2", "first", clock=clock)
    change = propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    assert read_desired(project, "main").pin == pin_at(project)
    assert pin_at(project) is not None and pin_at(project).version == "2"  # type: ignore[union-attr]
    git(project, "merge", "-q", "--no-ff", "-m", "Merge proposal", change.branch)  # the review
    desired = read_desired(project, "main")
    assert desired.pin is not None and (desired.pin.version, desired.pin.previous) == ("3", "2")
    [p] = proposals(project, PROPOSAL)
    assert p.state == "merged" and p.version == "3"
    again = propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    assert again.kind == "noop" and again.sha == desired.spec_sha
    assert tradeloop_branches(project) == ["tradeloop/promote-demo-v3"]


def test_a_squash_merged_and_deleted_proposal_is_not_reopened(
    project: Path, clock: SimulatedClock
) -> None:
    change = propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    git(project, "merge", "-q", "--squash", change.branch)
    git(project, "commit", "-q", "-m", "Squashed proposal")
    [p] = proposals(project, PROPOSAL)
    assert p.state == "merged"  # not an ancestor, but the pin names it
    git(project, "branch", "-q", "-D", change.branch)  # "delete branch after merge"
    again = propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    assert again.kind == "noop"
    assert tradeloop_branches(project) == [] and proposals(project, PROPOSAL) == []


def test_a_merged_proposal_branch_is_reused_when_the_pin_moved_on(
    project: Path, clock: SimulatedClock
) -> None:
    first = propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    git(project, "merge", "-q", "--no-ff", "-m", "merge", first.branch)
    git(project, "revert", "--no-edit", "-m", "1", "HEAD")  # a person undoes it by hand
    again = propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    assert again.kind == "proposal" and again.created and again.sha != first.sha
    assert tradeloop_branches(project) == [first.branch]
    [p] = proposals(project, PROPOSAL)
    assert p.state == "open" and not p.behind


def test_proposals_show_behind_and_filter_by_model(project: Path, clock: SimulatedClock) -> None:
    propose_or_apply(project, PROPOSAL, "demo", "3", REASON, clock=clock)
    clock.advance(timedelta(minutes=1))
    propose_or_apply(project, PROPOSAL, "demo", "4", REASON, clock=clock)
    (project / "README.md").write_text("moved on\n")
    git(project, "add", "README.md")
    git(project, "commit", "-q", "-m", "unrelated")
    ps = proposals(project, PROPOSAL)
    assert [(p.version, p.state, p.behind) for p in ps] == [
        ("3", "open", True),
        ("4", "open", True),
    ]
    assert proposals(project, PROPOSAL, "other") == []


def test_rollback_commits_directly_even_in_proposal_mode(
    project: Path, clock: SimulatedClock
) -> None:
    propose_or_apply(project, DIRECT, "demo", "3", REASON, clock=clock)
    proposal = propose_or_apply(project, PROPOSAL, "demo", "4", REASON, clock=clock)
    assert proposal.created
    clock.advance(timedelta(hours=1))
    change = record_rollback(
        project, PROPOSAL, "demo", "4", "3", "canary analysis rollback (p=0.001)", clock
    )
    assert change.kind == "commit" and change.created and change.branch == "main"
    assert change.closed == (proposal.branch,) == ("tradeloop/promote-demo-v4",)
    assert GitRepo(project).head("main") == change.sha
    desired = read_desired(project, "main")
    assert desired.pin is not None
    assert (desired.pin.version, desired.pin.rejected) == ("3", ("4",))
    assert desired.pin.updated == clock.now() and "rollback of v4" in desired.pin.reason
    assert tradeloop_branches(project) == []
    [c] = GitRepo(project).log("main", n=1)
    assert c.subject == "rollback demo v4 to v3 in production"
    assert c.trailers == {
        "Tradeloop-Model": "demo",
        "Tradeloop-Version": "3",
        "Tradeloop-Rejected": "4",
        "Tradeloop-Action": "rollback",
    }
    assert git(project, "status", "--porcelain") == ""
    # idempotent, and the rejected version is never proposed again
    again = record_rollback(project, PROPOSAL, "demo", "4", "3", "again", clock)
    assert again.kind == "noop" and again.sha == change.sha and again.closed == ()
    assert count(project, "main") == 3
    with pytest.raises(RejectedVersion, match="v4 was rolled back"):
        propose_or_apply(project, PROPOSAL, "demo", "4", REASON, clock=clock)
    with pytest.raises(RejectedVersion):
        propose_or_apply(project, DIRECT, "demo", "4", REASON, clock=clock)
    assert tradeloop_branches(project) == []


def test_rollback_of_a_pinned_version_restores_the_one_before(
    project: Path, clock: SimulatedClock
) -> None:
    for v in ("1", "2", "3"):
        propose_or_apply(project, DIRECT, "demo", v, REASON, clock=clock)
    record_rollback(project, DIRECT, "demo", "3", "2", "live sharpe decayed", clock)
    pin = pin_at(project)
    assert pin is not None and (pin.version, pin.previous, pin.rejected) == ("2", "1", ("3",))
    # and the next instant rollback target is right too
    record_rollback(project, DIRECT, "demo", "2", "1", "still bad", clock)
    pin = pin_at(project)
    assert pin is not None and (pin.version, pin.previous, pin.rejected) == ("1", None, ("3", "2"))


def test_rollback_of_the_first_model_leaves_nothing_pinned(
    project: Path, clock: SimulatedClock
) -> None:
    change = record_rollback(project, DIRECT, "demo", "1", None, "failed shadow", clock)
    assert change.created
    assert pin_at(project) == Pin(
        "demo", None, None, clock.now(), "rollback of v1: failed shadow", ("1",)
    )
    with pytest.raises(BadInput, match="back to itself"):
        record_rollback(project, DIRECT, "demo", "2", "2", "x", clock)


def test_rollback_keeps_a_checked_out_proposal_and_says_so(
    project: Path, clock: SimulatedClock, tmp_path: Path
) -> None:
    proposal = propose_or_apply(project, PROPOSAL, "demo", "4", REASON, clock=clock)
    git(project, "worktree", "add", "-q", str(tmp_path / "review"), proposal.branch)
    change = record_rollback(project, PROPOSAL, "demo", "4", None, "bad", clock)
    assert change.closed == () and "checked out, kept" in change.message
    [p] = proposals(project, PROPOSAL)
    assert p.state == "rejected"
    git(project, "worktree", "remove", str(tmp_path / "review"))
    assert close_proposal(project, PROPOSAL, "demo", "4") == proposal.branch
    assert close_proposal(project, PROPOSAL, "demo", "4") is None


def test_concurrent_rollbacks_keep_every_rejection(project: Path, clock: SimulatedClock) -> None:
    propose_or_apply(project, DIRECT, "demo", "3", REASON, clock=clock)
    git(project, "checkout", "-q", "-b", "work")  # main is not checked out: plumbing + CAS
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def rollback(i: int) -> None:
        barrier.wait()
        try:
            record_rollback(project, DIRECT, "demo", str(10 + i), "3", f"bad {i}", clock)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rollback, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    pin = pin_at(project)
    assert pin is not None and pin.version == "3"
    assert sorted(pin.rejected) == ["10", "11", "12", "13"]  # none lost to a race
    assert count(project, "main") == 2 + n


def test_a_pin_for_another_model_is_refused(project: Path, clock: SimulatedClock) -> None:
    propose_or_apply(project, DIRECT, "demo", "3", REASON, clock=clock)
    with pytest.raises(BadInput, match="pins 'demo', not 'other'"):
        propose_or_apply(project, DIRECT, "other", "1", REASON, clock=clock)
    with pytest.raises(BadInput, match="not a valid name"):
        propose_or_apply(project, PROPOSAL, "demo", "3 ; rm", REASON, clock=clock)
    with pytest.raises(BadInput, match="no branch 'prod'"):
        propose_or_apply(project, GitSpec(branch="prod"), "demo", "4", REASON, clock=clock)
