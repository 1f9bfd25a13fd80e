"""Promotions and rollbacks written back to git as commits: git keeps saying what runs.

Two traps of GitOps write-back loops are designed out here:

- A proposal re-opened on every loop until it is merged (a controller whose "needs sync" stays
  true until the merge, opening a new pull request each time; a write-back branch re-created
  after the merged one was deleted). A target has ONE proposal branch, named after it and
  created by compare-and-swap; while it exists unmerged it is returned, never duplicated; once
  the tracked branch's pin names the version, there is nothing left to propose.
- A rollback that waits for review, or is undone by the next sync, so git claims the opposite of
  what runs. A rollback is always committed straight to the tracked branch, whatever the mode,
  and the version is added to `rejected` so nothing rolls it out again.

Every write is computed from a fresh read of the tracked branch and committed with
compare-and-swap; when someone else moved the branch in between, the change is recomputed from
their state (so their edit, say another `rejected` entry, is kept) and tried again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from tradeloop.clock import Clock
from tradeloop.errors import BadInput
from tradeloop.gitops import remote
from tradeloop.gitops.desired import Pin, pin_path, read_pin
from tradeloop.gitops.messages import (
    PROPOSAL_PREFIX,
    check_name,
    one_line,
    promotion_message,
    proposal_branch,
    rollback_message,
)
from tradeloop.gitops.repo import ConcurrentUpdate, GitRepo, Identity
from tradeloop.spec import GitSpec

MAX_ATTEMPTS = 10

T = TypeVar("T")


class RejectedVersion(BadInput):
    """The version was rolled back before; it is not promoted again unless a person un-rejects it."""


@dataclass(frozen=True)
class GitChange:
    """What a write did: a commit on the tracked branch, a proposal branch, or nothing.

    `created` is False when the state was already there (idempotent repeat, open proposal);
    `sha` is then the existing head. `message` says what happened, for events and logs.
    """

    kind: Literal["commit", "proposal", "noop"]
    branch: str
    sha: str
    created: bool
    message: str
    closed: tuple[str, ...] = ()  # proposal branches deleted (by a rollback)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "branch": self.branch,
            "sha": self.sha,
            "created": self.created,
            "message": self.message,
            "closed": list(self.closed),
        }


@dataclass(frozen=True)
class Proposal:
    """A proposal branch. `open` awaits review; `merged` is in the tracked branch (merged,
    squashed or the pin names it); `rejected` was rolled back. `behind`: the tracked branch has
    commits the proposal lacks (its merge may need a rebase)."""

    branch: str
    model: str
    version: str
    sha: str
    state: Literal["open", "merged", "rejected"]
    behind: bool
    time: datetime
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "model": self.model,
            "version": self.version,
            "sha": self.sha,
            "state": self.state,
            "behind": self.behind,
            "time": self.time.isoformat(),
            "reason": self.reason,
        }


def _retrying(step: Callable[[], T]) -> T:
    """Run a read-compute-CAS step until it lands; the branch moving means: recompute."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return step()
        except ConcurrentUpdate:
            if attempt == MAX_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _current(repo: GitRepo, git: GitSpec, model: str) -> tuple[str, str, Pin | None]:
    remote.pull(repo, git.branch)  # with a shared remote, its branch is what we build on
    head = repo.branch_head(git.branch)
    ppath = pin_path(repo, git.pin_file)
    pin = read_pin(repo, head, ppath, label=git.branch)
    if pin is not None and pin.model != model:
        raise BadInput(
            f"{git.branch}:{ppath}: model: pins '{pin.model}', not '{model}'; "
            "one pin file holds one pipeline's model"
        )
    return head, ppath, pin


def propose_or_apply(
    repo_path: str | Path,
    git: GitSpec,
    model: str,
    version: str,
    reason: str,
    *,
    previous: str | None = None,
    clock: Clock,
    details: Mapping[str, str] | None = None,
    identity: Identity | None = None,
) -> GitChange:
    """Make the tracked branch's pin name `version`, directly or through one proposal branch.

    `direct`: a commit on the tracked branch. `proposal`: the branch
    `tradeloop/promote-<model>-v<version>`, made from the tracked branch with the new pin; while
    it is open it is returned as is (`created=False`). Already pinned: `noop`. A version in the
    pin's `rejected` list: RejectedVersion. `previous` defaults to the currently pinned version.
    """
    repo = GitRepo(repo_path, identity)
    model, version = check_name("model", model), check_name("version", version)
    if previous is not None:
        previous = check_name("previous version", previous)
    if git.mode not in ("direct", "proposal"):
        raise BadInput(f"deployment.git.mode: {git.mode!r} is not direct or proposal")

    def step() -> GitChange:
        head, ppath, pin = _current(repo, git, model)
        where = f"{git.branch}:{ppath}"
        if pin is not None and version in pin.rejected:
            raise RejectedVersion(
                f"{model} v{version} was rolled back ({where} lists it under rejected); "
                "remove it from there to allow promoting it again"
            )
        if pin is not None and pin.version == version:
            return GitChange("noop", git.branch, head, False, f"{where} already pins v{version}")
        now = clock.now()
        prev = previous if previous is not None else (pin.version if pin else None)
        new_pin = Pin(model, version, prev, now, one_line(reason), pin.rejected if pin else ())
        msg = promotion_message(model, version, prev, reason, details)
        if git.mode == "direct":
            sha = repo.commit_file(git.branch, ppath, new_pin.to_yaml(), msg, when=now)
            remote.push(repo, git.branch, sha, head)
            return GitChange(
                "commit", git.branch, sha, sha != head, f"committed {msg.splitlines()[0]}"
            )
        if remote.remote_name() is not None:
            raise BadInput(
                f"deployment.git.mode: proposal with {remote.REMOTE_ENV} set: proposal "
                "branches are not pushed to the remote yet; use mode: direct"
            )
        branch = proposal_branch(model, version)
        repo.check_branch_name(branch)
        existing = repo.head(f"refs/heads/{branch}")
        if existing is not None and not repo.is_ancestor(existing, head):
            return GitChange(
                "proposal",
                branch,
                existing,
                False,
                f"proposal {branch} is open: merge it into {git.branch} to promote v{version}",
            )
        if existing is not None and repo.checked_out(branch) is not None:
            raise BadInput(
                f"branch '{branch}' was merged but is checked out; switch away from it so "
                f"tradeloop can propose v{version} again"
            )
        # New, or merged once and superseded since (a later promotion, a revert): the branch
        # holds nothing unmerged, so its name is reused. The CAS makes two concurrent proposers
        # produce one branch: the loser re-reads and finds it open.
        new = repo.make_commit(head, ppath, new_pin.to_yaml(), msg, when=now)
        repo.update_ref(branch, new, existing, reason=f"tradeloop: propose v{version}")
        return GitChange(
            "proposal",
            branch,
            new,
            True,
            f"proposed {msg.splitlines()[0]} on {branch}: merge it into {git.branch}",
        )

    return _retrying(step)


def proposals(
    repo_path: str | Path,
    git: GitSpec,
    model: str | None = None,
    *,
    identity: Identity | None = None,
) -> list[Proposal]:
    """The proposal branches there are, oldest first, each open, merged or rejected."""
    repo = GitRepo(repo_path, identity)
    head = repo.branch_head(git.branch)
    ppath = pin_path(repo, git.pin_file)
    tracked = read_pin(repo, head, ppath, label=git.branch)
    out: list[Proposal] = []
    for branch in repo.branches():
        if not branch.startswith(PROPOSAL_PREFIX):
            continue
        m, sep, v = branch.removeprefix(PROPOSAL_PREFIX).rpartition("-v")
        if not sep or not m or (model is not None and m != model):
            continue
        sha = repo.branch_head(branch)
        merged = repo.is_ancestor(sha, head) or (tracked is not None and tracked.version == v)
        state: Literal["open", "merged", "rejected"] = (
            "rejected"
            if tracked is not None and v in tracked.rejected
            else ("merged" if merged else "open")
        )
        try:
            pin = read_pin(repo, sha, ppath, label=branch)
        except BadInput:
            pin = None  # someone broke the pin on the branch: still list the proposal
        tip = repo.log(sha, n=1)[0]
        out.append(
            Proposal(
                branch,
                m,
                v,
                sha,
                state,
                not repo.is_ancestor(head, sha),
                tip.time,
                pin.reason if pin else tip.subject,
            )
        )
    return sorted(out, key=lambda p: (p.time, p.branch))


def close_proposal(
    repo_path: str | Path,
    git: GitSpec,
    model: str,
    version: str,
    *,
    identity: Identity | None = None,
) -> str | None:
    """Delete the proposal branch for model/version; the branch name if deleted.

    A branch checked out in a worktree is left alone (deleting it would pull the ground from
    under whoever is on it); `proposals()` then shows it as rejected or merged.
    """
    repo = GitRepo(repo_path, identity)
    return _close(repo, proposal_branch(check_name("model", model), check_name("version", version)))


def _close(repo: GitRepo, branch: str) -> str | None:
    def step() -> str | None:
        sha = repo.head(f"refs/heads/{branch}")
        if sha is None or repo.checked_out(branch) is not None:
            return None
        repo.delete_branch(branch, sha)
        return branch

    return _retrying(step)


def _previous_of(
    repo: GitRepo, head: str, ppath: str, version: str, rejected: tuple[str, ...]
) -> str | None:
    """What `version` replaced when it was pinned: the next instant-rollback target."""
    for commit in repo.log(head, ppath, n=200):
        try:
            pin = read_pin(repo, commit.sha, ppath)
        except BadInput:
            continue
        if pin is not None and pin.version == version:
            prev = pin.previous
            return prev if prev not in rejected and prev != version else None
    return None


def record_rollback(
    repo_path: str | Path,
    git: GitSpec,
    model: str,
    rejected_version: str,
    restore_version: str | None,
    reason: str,
    clock: Clock,
    *,
    details: Mapping[str, str] | None = None,
    identity: Identity | None = None,
) -> GitChange:
    """Record in git that `rejected_version` was rolled back and `restore_version` runs.

    Always a commit on the tracked branch, even in proposal mode: a rollback has already
    happened in the world, and git must not claim what doesn't run. The version joins
    `rejected`; the proposal branch for it (open or merged) is deleted. `restore_version` None:
    nothing serves. Idempotent: repeating it commits nothing and deletes nothing more.
    """
    repo = GitRepo(repo_path, identity)
    model = check_name("model", model)
    rejected_version = check_name("version", rejected_version)
    if restore_version is not None:
        restore_version = check_name("version", restore_version)
    if restore_version == rejected_version:
        raise BadInput(f"cannot roll v{rejected_version} back to itself")

    def step() -> GitChange:
        head, ppath, pin = _current(repo, git, model)
        rejected = tuple(pin.rejected) if pin else ()
        if rejected_version not in rejected:
            rejected = (*rejected, rejected_version)
        if pin is not None and pin.version == restore_version and pin.rejected == rejected:
            return GitChange(
                "noop",
                git.branch,
                head,
                False,
                f"{git.branch}:{ppath} already pins v{restore_version} with v{rejected_version} "
                "rejected",
            )
        if restore_version is None:
            prev = None
        elif pin is not None and pin.version == restore_version:
            prev = pin.previous if pin.previous not in rejected else None
        else:
            prev = _previous_of(repo, head, ppath, restore_version, rejected)
        now = clock.now()
        new_pin = Pin(
            model,
            restore_version,
            prev,
            now,
            one_line(f"rollback of v{rejected_version}: {reason}"),
            rejected,
        )
        msg = rollback_message(model, rejected_version, restore_version, reason, details)
        sha = repo.commit_file(git.branch, ppath, new_pin.to_yaml(), msg, when=now)
        remote.push(repo, git.branch, sha, head)
        return GitChange("commit", git.branch, sha, sha != head, f"committed {msg.splitlines()[0]}")

    change = _retrying(step)
    branch = proposal_branch(model, rejected_version)
    closed = _close(repo, branch)
    if closed is None:
        if repo.branch_exists(branch):  # checked out somewhere: say so rather than hide it
            return replace(change, message=f"{change.message}; {branch} is checked out, kept")
        return change
    return replace(change, message=f"{change.message}; closed proposal {closed}", closed=(closed,))
