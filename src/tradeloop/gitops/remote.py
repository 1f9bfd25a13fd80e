"""The tracked branch on a shared remote, for processes that each hold their own clone.

With `TRADELOOP_GIT_REMOTE` unset (the default) the local repository is the truth and nothing
here runs. Set to a remote's name (`origin`), every process (each deployer replica, a laptop)
works on its own clone and the remote's branch is the truth:

- `pull` before reading the desired state or computing a commit: fetch the remote branch and
  move the local one to it (a reset, not a merge: a local commit the remote refused is
  discarded, since the remote is what every other replica sees);
- `push` after a commit: `git push --force-with-lease=<branch>:<old>`, a compare-and-swap on
  the remote. A rejection (another replica pushed first) is `ConcurrentUpdate`, so the caller's
  read-compute-CAS loop pulls again and recomputes: two replicas never both land a commit for
  the same decision, and an identical decision already on the remote becomes a no-op.

Proposal branches (`deployment.git.mode: proposal`) are not pushed yet: with a remote
configured they are refused with a clear error rather than left on one machine.
"""

from __future__ import annotations

import os

from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.gitops.git import run_git
from tradeloop.gitops.repo import ConcurrentUpdate, GitRepo

REMOTE_ENV = "TRADELOOP_GIT_REMOTE"

__all__ = ["REMOTE_ENV", "pull", "push", "remote_name"]


def remote_name() -> str | None:
    """The remote whose branch is the truth, from `TRADELOOP_GIT_REMOTE`; None: local."""
    name = os.environ.get(REMOTE_ENV, "").strip()
    if not name:
        return None
    if name.startswith("-") or any(c.isspace() for c in name):
        raise BadInput(f"{REMOTE_ENV}={name!r} is not a git remote name")
    return name


def _remote_ref(remote: str, branch: str) -> str:
    return f"refs/remotes/{remote}/{branch}"


def pull(repo: GitRepo, branch: str) -> None:
    """Make the local `branch` the remote's (no-op without a remote)."""
    remote = remote_name()
    if remote is None:
        return
    proc = run_git(
        [
            "fetch",
            "--quiet",
            "--no-tags",
            remote,
            f"+refs/heads/{branch}:{_remote_ref(remote, branch)}",
        ],
        cwd=repo.root,
        ok=None,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise RuntimeFailure(f"cannot fetch '{branch}' from git remote '{remote}': {err}")
    target = repo.head(_remote_ref(remote, branch))
    if target is None:
        raise BadInput(f"git remote '{remote}' has no branch '{branch}'")
    local = repo.head(f"refs/heads/{branch}")
    if local == target:
        return
    tree = repo.checked_out(branch)
    if tree is None:
        repo.update_ref(branch, target, local, reason=f"tradeloop: follow {remote}/{branch}")
        return
    # The branch is checked out: move the work tree with it. `--keep` refuses (rather than
    # overwrites) local edits to a file the remote changed.
    done = run_git(["reset", "--quiet", "--keep", target], cwd=tree, ok=None)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        raise BadInput(
            f"{tree}: cannot follow {remote}/{branch} to {target[:12]}: {err} "
            "(commit or discard the local edits)"
        )


def push(repo: GitRepo, branch: str, new: str, old: str) -> None:
    """Publish `new` as the remote `branch` if the remote is still at `old`."""
    remote = remote_name()
    if remote is None or new == old:
        return
    proc = run_git(
        [
            "push",
            "--quiet",
            "--porcelain",
            f"--force-with-lease=refs/heads/{branch}:{old}",
            remote,
            f"{new}:refs/heads/{branch}",
        ],
        cwd=repo.root,
        ok=None,
    )
    if proc.returncode == 0:
        return
    text = (proc.stdout + proc.stderr).decode(errors="replace")
    if "rejected" in text or "stale info" in text or "non-fast-forward" in text:
        raise ConcurrentUpdate(
            f"{remote}/{branch} moved while tradeloop was pushing: {text.strip()}"
        )
    raise RuntimeFailure(f"cannot push '{branch}' to git remote '{remote}': {text.strip()}")
