"""`GitRepo.head` reads a branch from its ref file or packed-refs instead of running git:
it must agree with `git rev-parse` in every layout a controller may meet."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tradeloop.gitops.repo import GitRepo
from tradeloop.templates import git, git_commit


def _rev(cwd: Path, ref: str) -> str:
    out = subprocess.run(["git", "rev-parse", ref], cwd=cwd, capture_output=True, text=True)
    return out.stdout.strip()


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("1\n")
    git_commit(root, "one", "a.txt")
    return root


def test_loose_packed_worktree_and_missing_branches_agree_with_git(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    repo = GitRepo(root)
    assert repo.head("refs/heads/main") == _rev(root, "main")
    git(root, "branch", "side")
    git(root, "pack-refs", "--all")  # both now live only in packed-refs
    assert not (root / ".git" / "refs" / "heads" / "main").exists()
    assert repo.head("refs/heads/side") == _rev(root, "side")
    (root / "a.txt").write_text("2\n")
    git_commit(root, "two", "a.txt")  # a loose ref again, newer than the packed one
    assert repo.head("refs/heads/main") == _rev(root, "main") != _rev(root, "side")
    assert repo.head("refs/heads/nope") is None
    wt = tmp_path / "wt"
    git(root, "worktree", "add", "-q", str(wt), "side")
    other = GitRepo(wt)  # branches live in the main repository's folder
    assert other.head("refs/heads/main") == _rev(root, "main")
    assert other.head("refs/heads/side") == _rev(wt, "HEAD")
    sub = root / "ml"
    sub.mkdir()
    assert GitRepo(sub).head("refs/heads/main") == _rev(root, "main")
