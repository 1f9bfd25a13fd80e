"""run_git: the one git wrapper, with the caller's GIT_* environment scrubbed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops.conftest import git
from tradeloop.errors import RuntimeFailure
from tradeloop.gitops.git import GIT_ENV_DROP, git_env, run_git


def test_a_git_dir_from_the_caller_does_not_redirect_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    for d in (mine, other):
        d.mkdir()
        git(d, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # as inside someone's git hook
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / "index"))
    out = run_git(["rev-parse", "--absolute-git-dir"], cwd=mine).stdout.decode().strip()
    assert Path(out) == (mine / ".git").resolve()
    env = git_env({"GIT_AUTHOR_DATE": "@0 +0000"})
    assert not set(GIT_ENV_DROP) - {"GIT_AUTHOR_DATE"} & set(env)
    assert env["GIT_AUTHOR_DATE"] == "@0 +0000" and env["GIT_TERMINAL_PROMPT"] == "0"


def test_failures_name_the_command_and_stderr_unless_the_code_is_allowed(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    with pytest.raises(RuntimeFailure, match=r"`git rev-parse nope` failed .*exit 128"):
        run_git(["rev-parse", "nope"], cwd=tmp_path)
    assert run_git(["rev-parse", "nope"], cwd=tmp_path, ok=None).returncode == 128
