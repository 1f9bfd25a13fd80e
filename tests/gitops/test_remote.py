"""TRADELOOP_GIT_REMOTE: each replica on its own clone, the remote's branch the one truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops.conftest import count, git
from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.gitops.promotion import propose_or_apply, record_rollback
from tradeloop.gitops.remote import REMOTE_ENV, pull, push
from tradeloop.gitops.repo import ConcurrentUpdate, GitRepo
from tradeloop.spec import GitSpec

DIRECT = GitSpec(branch="main", mode="direct")


@pytest.fixture
def clones(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A bare origin made from `project`, and two clones of it (two replicas' disks)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(origin))
    a, b = tmp_path / "a", tmp_path / "b"
    for c in (a, b):
        git(tmp_path, "clone", "-q", str(origin), str(c))
    monkeypatch.setenv(REMOTE_ENV, "origin")
    return a, b


def test_one_commit_for_one_decision_from_two_clones(
    clones: tuple[Path, Path], clock: SimulatedClock, tmp_path: Path
) -> None:
    a, b = clones
    first = propose_or_apply(a, DIRECT, "demo", "1", "first", clock=clock)
    assert first.created
    origin = tmp_path / "origin.git"
    assert GitRepo(origin).head("refs/heads/main") == first.sha
    # b has not fetched: it pulls before computing, so the same decision is a no-op
    again = propose_or_apply(b, DIRECT, "demo", "1", "first", clock=clock)
    assert again.kind == "noop" and again.sha == first.sha
    assert GitRepo(b).head("refs/heads/main") == first.sha
    assert git(b, "status", "--porcelain") == ""  # b's work tree followed
    rb = record_rollback(b, DIRECT, "demo", "2", "1", "worse", clock)
    assert rb.created
    assert record_rollback(a, DIRECT, "demo", "2", "1", "worse", clock).kind == "noop"
    assert count(origin, "main") == 3  # init, promote v1, rollback of v2: once each


def test_a_push_behind_the_remote_is_a_concurrent_update(
    clones: tuple[Path, Path], clock: SimulatedClock
) -> None:
    a, b = clones
    propose_or_apply(a, DIRECT, "demo", "1", "first", clock=clock)
    repo = GitRepo(b)
    old = repo.branch_head("main")  # stale: the remote moved on
    new = repo.make_commit(old, "production.yaml", "x\n", "stale write")
    with pytest.raises(ConcurrentUpdate):
        push(repo, "main", new, old)
    pull(repo, "main")
    assert repo.branch_head("main") == GitRepo(a).branch_head("main")


def test_proposals_with_a_remote_are_refused_clearly(
    clones: tuple[Path, Path], clock: SimulatedClock
) -> None:
    with pytest.raises(BadInput, match="proposal branches are not pushed"):
        propose_or_apply(clones[0], GitSpec(mode="proposal"), "demo", "1", "x", clock=clock)


def test_a_missing_remote_is_a_clear_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REMOTE_ENV, "nowhere")
    with pytest.raises(Exception, match="nowhere"):
        pull(GitRepo(project), "main")
