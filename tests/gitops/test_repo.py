from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gitops.conftest import count, git
from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.gitops.repo import ConcurrentUpdate, GitRepo, Identity, UncommittedEdits
from tradeloop.spec import SPEC_FILENAME

MSG = "set pin\n\nreason: test\n\nTradeloop-Model: demo\nTradeloop-Version: 3\n"


def test_a_folder_that_is_not_a_repository_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(BadInput, match="not a git repository"):
        GitRepo(tmp_path / "plain")
    with pytest.raises(BadInput, match="not a folder"):
        GitRepo(tmp_path / "missing")


def test_reads_commits_not_the_working_tree(project: Path) -> None:
    repo = GitRepo(project)
    spec_text = (project / SPEC_FILENAME).read_text()
    (project / SPEC_FILENAME).write_text("edited, not committed\n")
    assert repo.read_file("main", SPEC_FILENAME) == spec_text
    assert repo.read_file("main", "nope.yaml") is None
    assert repo.head("main") == git(project, "rev-parse", "HEAD").strip()
    assert repo.head("no-such-branch") is None
    assert repo.branches() == ["main"]
    assert repo.branch_exists("main") and not repo.branch_exists("other")
    with pytest.raises(BadInput, match="no commit or branch 'other'"):
        repo.read_file("other", SPEC_FILENAME)
    with pytest.raises(BadInput, match=r"no branch 'other' \(branches: main\)"):
        repo.branch_head("other")


def test_commit_on_the_checked_out_branch_leaves_a_clean_tree(project: Path) -> None:
    repo = GitRepo(project)
    before = repo.head("main")
    when = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    sha = repo.commit_file("main", "production.yaml", "version: '3'\n", MSG, when=when)
    assert sha != before and repo.head("main") == sha
    assert git(project, "status", "--porcelain") == ""
    assert (project / "production.yaml").read_text() == "version: '3'\n"
    [c] = repo.log("main", n=1)
    assert c.sha == sha and c.subject == "set pin" and c.time == when
    assert c.trailers == {"Tradeloop-Model": "demo", "Tradeloop-Version": "3"}
    assert git(project, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "tradeloop <tradeloop@localhost>|tradeloop <tradeloop@localhost>"
    )
    # idempotent: the same content again is no commit
    assert repo.commit_file("main", "production.yaml", "version: '3'\n", MSG) == sha
    assert count(project, "main") == 2


def test_commit_on_the_checked_out_branch_commits_only_its_path(project: Path) -> None:
    (project / "notes.md").write_text("staged by the user\n")
    git(project, "add", "notes.md")
    (project / SPEC_FILENAME).write_text((project / SPEC_FILENAME).read_text() + "# wip\n")
    repo = GitRepo(project)
    sha = repo.commit_file("main", "production.yaml", "x: 1\n", MSG)
    assert git(project, "show", "--name-only", "--format=", sha).split() == ["production.yaml"]
    status = git(project, "status", "--porcelain").splitlines()
    assert set(status) == {"A  notes.md", f" M {SPEC_FILENAME}"}  # the user's work, as it was


def test_commit_to_a_branch_not_checked_out_leaves_the_working_tree_alone(project: Path) -> None:
    repo = GitRepo(project)
    base = repo.create_branch("release", "main")
    (project / "wip.txt").write_text("untracked user file\n")
    (project / SPEC_FILENAME).write_text("user edit\n")
    status = git(project, "status", "--porcelain")
    sha = repo.commit_file("release", "production.yaml", "x: 1\n", MSG)
    assert repo.head("release") == sha and repo.head("main") == base
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(project, "status", "--porcelain") == status
    assert not (project / "production.yaml").exists()
    assert git(project, "rev-parse", f"{sha}^").strip() == base
    assert repo.read_file("release", "production.yaml") == "x: 1\n"
    assert repo.read_file("release", SPEC_FILENAME) == repo.read_file("main", SPEC_FILENAME)
    assert repo.commit_file("release", "production.yaml", "x: 1\n", MSG) == sha  # idempotent
    assert count(project, "release") == 2


def test_refuses_to_overwrite_uncommitted_edits_to_the_path(project: Path) -> None:
    repo = GitRepo(project)
    repo.commit_file("main", "production.yaml", "version: '3'\n", MSG)
    head = repo.head("main")
    (project / "production.yaml").write_text("version: '9'  # my edit\n")
    with pytest.raises(UncommittedEdits, match="uncommitted changes") as err:
        repo.commit_file("main", "production.yaml", "version: '4'\n", MSG)
    assert isinstance(err.value, BadInput)
    assert (project / "production.yaml").read_text() == "version: '9'  # my edit\n"
    assert repo.head("main") == head
    # staged, and untracked at a new path, are the user's too
    git(project, "add", "production.yaml")
    with pytest.raises(UncommittedEdits):
        repo.commit_file("main", "production.yaml", "version: '4'\n", MSG)
    (project / "other.yaml").write_text("mine\n")
    with pytest.raises(UncommittedEdits):
        repo.commit_file("main", "other.yaml", "theirs\n", MSG)
    assert repo.head("main") == head


def test_resumes_when_a_crash_left_our_content_uncommitted(project: Path) -> None:
    repo = GitRepo(project)
    (project / "production.yaml").write_text("version: '4'\n")  # written, then the crash
    sha = repo.commit_file("main", "production.yaml", "version: '4'\n", MSG)
    assert repo.read_file(sha, "production.yaml") == "version: '4'\n"
    assert git(project, "status", "--porcelain") == ""


def test_a_locked_index_is_retryable_and_leaves_no_trace(project: Path) -> None:
    repo = GitRepo(project)
    lock = project / ".git" / "index.lock"  # another git command is running
    lock.write_text("")
    with pytest.raises(ConcurrentUpdate, match=r"index\.lock"):
        repo.commit_file("main", "production.yaml", "v: 1\n", MSG)
    assert not (project / "production.yaml").exists()
    lock.unlink()
    repo.commit_file("main", "production.yaml", "v: 1\n", MSG)
    lock.write_text("")
    with pytest.raises(ConcurrentUpdate):
        repo.commit_file("main", "production.yaml", "v: 2\n", MSG)
    lock.unlink()
    assert (project / "production.yaml").read_text() == "v: 1\n"
    assert git(project, "status", "--porcelain") == ""
    # so the retry, with content recomputed (a new time, say), is not taken for a user's edit
    sha = repo.commit_file("main", "production.yaml", "v: 3\n", MSG)
    assert repo.read_file(sha, "production.yaml") == "v: 3\n"


def test_update_ref_is_a_compare_and_swap(project: Path) -> None:
    repo = GitRepo(project)
    base = repo.create_branch("release", "main")
    mine = repo.make_commit(base, "a.txt", "mine\n", "mine")
    theirs = repo.commit_file("release", "b.txt", "theirs\n", "theirs")  # the branch moves
    with pytest.raises(ConcurrentUpdate, match="moved"):
        repo.update_ref("release", mine, base)
    assert repo.head("release") == theirs  # their commit is not lost
    with pytest.raises(ConcurrentUpdate):
        repo.update_ref("release", mine, None)  # "create" when it exists
    with pytest.raises(ConcurrentUpdate, match="already exists"):
        repo.create_branch("release", "main")
    repo.update_ref("release", mine, theirs)  # the right old value: moves
    assert repo.head("release") == mine


def test_concurrent_writers_are_never_lost(project: Path) -> None:
    repo = GitRepo(project)
    base = repo.create_branch("release", "main")
    n = 6
    barrier = threading.Barrier(n)
    landed: list[str] = []
    raced: list[int] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            GitRepo(project).commit_file("release", f"f{i}.txt", f"{i}\n", f"write {i}")
            landed.append(f"f{i}.txt")
        except ConcurrentUpdate:
            raced.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert landed and len(landed) + len(raced) == n
    files = set(git(project, "ls-tree", "--name-only", "release").split())
    assert set(landed) <= files  # every reported success is on the branch
    assert count(project, "release") - count(project, base) == len(landed)


def test_a_branch_checked_out_in_a_linked_worktree_is_written_there(
    project: Path, tmp_path: Path
) -> None:
    git(project, "worktree", "add", "-q", "-b", "review", str(tmp_path / "wt"))
    repo = GitRepo(project)
    sha = repo.commit_file("review", "production.yaml", "x: 1\n", MSG)
    assert (tmp_path / "wt" / "production.yaml").read_text() == "x: 1\n"
    assert git(tmp_path / "wt", "status", "--porcelain") == ""
    assert git(tmp_path / "wt", "rev-parse", "HEAD").strip() == sha
    assert not (project / "production.yaml").exists()


def test_bare_repository_is_written_with_plumbing(project: Path, tmp_path: Path) -> None:
    git(tmp_path, "clone", "-q", "--bare", str(project), str(tmp_path / "bare.git"))
    repo = GitRepo(tmp_path / "bare.git", Identity("bot", "bot@example.com"))
    sha = repo.commit_file("main", "production.yaml", "x: 1\n", MSG)
    assert repo.read_file("main", "production.yaml") == "x: 1\n"
    assert git(tmp_path / "bare.git", "log", "-1", "--format=%an %ae", sha).strip() == (
        "bot bot@example.com"
    )


def test_log_filters_by_path_and_reads_trailers(project: Path) -> None:
    repo = GitRepo(project)
    repo.commit_file("main", "production.yaml", "v: 1\n", MSG)
    repo.commit_file("main", "other.txt", "o\n", "other\n\nTradeloop-Action: none\n")
    pins = repo.log("main", "production.yaml")
    assert [c.subject for c in pins] == ["set pin"]
    everything = repo.log("main", n=10)
    assert [c.subject for c in everything][:2] == ["other", "set pin"]
    assert everything[0].trailers == {"Tradeloop-Action": "none"}
    assert repo.is_ancestor(pins[0].sha, everything[0].sha)
    assert not repo.is_ancestor(everything[0].sha, pins[0].sha)


def test_git_failures_name_the_command_and_its_stderr(project: Path) -> None:
    repo = GitRepo(project)
    with pytest.raises(RuntimeFailure, match=r"`git merge-base --is-ancestor main nope`.*nope"):
        repo.is_ancestor("main", "nope")


def test_git_environment_of_the_caller_is_not_inherited(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))  # as inside someone's git hook
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Mallory")
    repo = GitRepo(project)
    sha = repo.commit_file("main", "production.yaml", "x: 1\n", MSG)
    monkeypatch.delenv("GIT_DIR")
    assert git(project, "log", "-1", "--format=%an", sha).strip() == "tradeloop"


def test_subfolder_paths_are_relative_to_the_repository_root(tmp_path: Path) -> None:
    root = tmp_path / "mono"
    (root / "ml").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "ml" / "a.txt").write_text("a\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    repo = GitRepo(root / "ml")
    assert repo.prefix == "ml/" and repo.root == root.resolve()
    assert repo.rel("production.yaml") == "ml/production.yaml"
    assert repo.read_file("main", repo.rel("a.txt")) == "a\n"
    repo.commit_file("main", repo.rel("production.yaml"), "x: 1\n", MSG)
    assert (root / "ml" / "production.yaml").read_text() == "x: 1\n"
    assert git(root, "status", "--porcelain") == ""
