"""Real git repositories in tmp folders, on a machine with no git identity or user config."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

import pytest

from tradeloop.spec import SPEC_FILENAME

USER = ["-c", "user.name=Alice", "-c", "user.email=alice@example.com"]


@pytest.fixture(autouse=True)
def _no_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system config: tradeloop's commits must carry their own identity."""
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "EMAIL"):
        monkeypatch.delenv(var, raising=False)


def git(cwd: Path, *args: str) -> str:
    """Run git as a user would (as Alice); return stdout."""
    proc = subprocess.run(["git", *USER, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def count(cwd: Path, ref: str) -> int:
    return int(git(cwd, "rev-list", "--count", ref).strip())


def example_spec() -> str:
    return resources.files("tradeloop.templates").joinpath(SPEC_FILENAME).read_text()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """What `tradeloop init` makes (without importing the whole CLI, to keep these tests fast):
    a git repo with the example spec (pipeline `demo`) committed on main, main checked out."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / SPEC_FILENAME).write_text(example_spec())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", SPEC_FILENAME)
    git(repo, "commit", "-q", "-m", "tradeloop init: example pipeline spec")
    return repo
