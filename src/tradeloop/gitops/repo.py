"""The git CLI, run safely on the user's repository.

Why the CLI through subprocess and not a library: the CLI is what users run, so it honours their
config, hooks-free plumbing and worktrees exactly as they expect, and it adds no dependency.

Two rules make writes safe on a repository someone is working in:

- A branch that is checked out is written through its working tree, committing only the one path
  (`git commit --only`), and never over uncommitted edits to that path.
- A branch that is not checked out is written with plumbing (a private index, `commit-tree`) and
  moved with `git update-ref <ref> <new> <old>`: a compare-and-swap, so a concurrent writer is
  never silently lost. The caller that computed the content retries on `ConcurrentUpdate`.

Library and process errors are translated here: `BadInput` for what the user gave wrong (not a
repository, a missing branch, edits in the way), `RuntimeFailure` for git failing, with the
command and its stderr.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.gitops.commits import Commit, Identity, commit_message, commit_subject, date_env
from tradeloop.gitops.git import run_git
from tradeloop.gitops.refs import read_branch


class UncommittedEdits(BadInput):
    """The path to write has uncommitted changes in the working tree: they are the user's."""


class ConcurrentUpdate(RuntimeFailure):
    """A branch moved (or appeared) between reading it and updating it. Re-read and retry."""


class GitRepo:
    """One git repository, addressed by any folder inside its working tree (or a bare repo).

    Paths given to methods are relative to the repository root; `prefix` is where `path` sits
    inside it (e.g. `ml/` when the project is a sub-folder of a monorepo), and `rel()` joins it.
    """

    def __init__(self, path: str | Path, identity: Identity | None = None) -> None:
        self.identity = identity or Identity()
        p = Path(path).expanduser()
        if not p.is_dir():
            raise BadInput(f"{p}: not a folder, so not a git repository")
        self.path = p.resolve()
        proc = run_git(
            ["rev-parse", "--is-bare-repository", "--absolute-git-dir", "--show-prefix"],
            cwd=self.path,
            ok=None,
        )
        if proc.returncode != 0:
            raise BadInput(
                f"{self.path}: not a git repository ({proc.stderr.decode().strip()}); "
                "create one with `tradeloop init` or `git init`"
            )
        lines = proc.stdout.decode().splitlines()
        self.bare = lines[0].strip() == "true"
        self.git_dir = Path(lines[1].strip())
        self.prefix = lines[2].strip() if len(lines) > 2 and not self.bare else ""
        self.root = self.git_dir if self.bare else (self.path / self._up(self.prefix)).resolve()

    @staticmethod
    def _up(prefix: str) -> str:
        depth = len([p for p in prefix.split("/") if p])
        return "/".join([".."] * depth) or "."

    def rel(self, name: str) -> str:
        """`name` (relative to the folder this repo was opened at) as a repository path."""
        return f"{self.prefix}{name}"

    # ------------------------------------------------------------------------------ running git

    def _run(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        ok: Sequence[int] = (0,),
    ) -> subprocess.CompletedProcess[bytes]:
        return run_git(args, cwd=cwd or self.root, input=input, env=env, ok=ok)

    def _out(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        out = self._run(*args, cwd=cwd, input=input, env=env).stdout
        return out.decode(errors="replace").strip()

    # ----------------------------------------------------------------------------------- reading

    def head(self, ref: str) -> str | None:
        """The commit `ref` names (branch, tag, sha), or None when there is no such commit.

        A branch is read from its ref file (or packed-refs) when it is a plain one: the
        controllers look at the tracked branch on every run, and a `git rev-parse` process
        costs ~5 ms each time. git updates refs by atomic rename, so the read is consistent;
        anything unusual (a symbolic ref, a malformed file) asks git itself.
        """
        if ref.startswith("refs/heads/"):
            sha = read_branch(self.git_dir, ref)
            if sha is not None:
                return sha or None
        proc = self._run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", ok=(0, 1))
        sha = proc.stdout.decode().strip()
        return sha if proc.returncode == 0 and sha else None

    def branch_head(self, branch: str) -> str:
        """The head of local branch `branch`; BadInput naming the branches there are if none."""
        sha = self.head(f"refs/heads/{branch}")
        if sha is None:
            have = ", ".join(self.branches()) or "none: the repository has no commits yet"
            raise BadInput(f"{self.root}: no branch '{branch}' (branches: {have})")
        return sha

    def branches(self) -> list[str]:
        out = self._out("for-each-ref", "--format=%(refname)", "refs/heads/")
        return [r.removeprefix("refs/heads/") for r in out.splitlines() if r]

    def branch_exists(self, name: str) -> bool:
        return self.head(f"refs/heads/{name}") is not None

    def is_ancestor(self, a: str, b: str) -> bool:
        """Whether commit `a` is reachable from `b` (every commit is its own ancestor)."""
        return self._run("merge-base", "--is-ancestor", a, b, ok=(0, 1)).returncode == 0

    def blob_sha(self, ref: str, path: str) -> str | None:
        proc = self._run("rev-parse", "--verify", "--quiet", f"{ref}:{path}", ok=(0, 1))
        sha = proc.stdout.decode().strip()
        return sha if proc.returncode == 0 and sha else None

    def read_file(self, ref: str, path: str) -> str | None:
        """The text of `path` at `ref` (not the working tree), or None if the file isn't there.

        A missing ref is BadInput: reading a file from a branch that doesn't exist is a mistake,
        not an empty file.
        """
        commit = self.head(ref)
        if commit is None:
            raise BadInput(f"{self.root}: no commit or branch '{ref}' to read {path} from")
        proc = self._run("cat-file", "blob", f"{commit}:{path}", ok=(0, 128))
        if proc.returncode != 0:
            if self.blob_sha(commit, path) is None:
                return None
            raise BadInput(f"{ref}:{path}: not a file")
        try:
            return proc.stdout.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"{ref}:{path}: not UTF-8 text") from exc

    def log(self, ref: str, path: str | None = None, n: int = 20) -> list[Commit]:
        """The newest `n` commits reachable from `ref` (touching `path` if given), newest first."""
        fmt = "%H%x1f%s%x1f%ct%x1f%an%x1f%(trailers:only,unfold)%x1e"
        args = ["log", f"-n{int(n)}", f"--format={fmt}", ref, "--"]
        if path is not None:
            args.append(path)
        out = self._run(*args).stdout.decode(errors="replace")
        commits: list[Commit] = []
        for rec in out.split("\x1e"):
            rec = rec.strip("\n")
            if not rec:
                continue
            sha, subject, ts, author, trailer_text = rec.split("\x1f", 4)
            trailers: dict[str, str] = {}
            for line in trailer_text.splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    trailers[key.strip()] = value.strip()
            commits.append(
                Commit(sha, subject, trailers, datetime.fromtimestamp(int(ts), UTC), author)
            )
        return commits

    def checked_out(self, branch: str) -> Path | None:
        """The working tree where `branch` is checked out (main or linked worktree), if any."""
        out = self._out("worktree", "list", "--porcelain")
        tree: Path | None = None
        bare = False
        for line in [*out.splitlines(), ""]:
            if line.startswith("worktree "):
                tree, bare = Path(line.removeprefix("worktree ")), False
            elif line == "bare":
                bare = True
            elif line == f"branch refs/heads/{branch}" and tree is not None and not bare:
                return tree
        return None

    def check_branch_name(self, name: str) -> None:
        if self._run("check-ref-format", "--branch", name, ok=(0, 1, 128)).returncode != 0:
            raise BadInput(f"'{name}' is not a valid git branch name")

    # ----------------------------------------------------------------------------------- writing

    def update_ref(self, branch: str, new: str, old: str | None, reason: str = "tradeloop") -> None:
        """Move `branch` to `new` only if it is still at `old` (None: only if it doesn't exist).

        The compare-and-swap that makes a lost concurrent update impossible: git checks `old`
        under the ref's lock.
        """
        proc = self._run(
            "update-ref",
            "-m",
            reason,
            f"refs/heads/{branch}",
            new,
            old or "",  # empty: the ref must not exist (any hash algorithm)
            ok=(0, 1, 128),
        )
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            now = self.head(f"refs/heads/{branch}")
            if now != old:
                raise ConcurrentUpdate(
                    f"branch '{branch}' moved while tradeloop was writing to it "
                    f"(expected {old or 'no branch'}, found {now or 'no branch'}): {err}"
                )
            raise RuntimeFailure(f"`git update-ref refs/heads/{branch}` failed: {err}")

    def delete_branch(self, branch: str, old: str) -> None:
        """Delete `branch` if it is still at `old`. Never a branch checked out in a worktree."""
        if self.checked_out(branch) is not None:
            raise BadInput(f"branch '{branch}' is checked out; not deleting it")
        proc = self._run("update-ref", "-d", f"refs/heads/{branch}", old, ok=(0, 1, 128))
        if proc.returncode != 0:
            if self.head(f"refs/heads/{branch}") not in (old, None):
                raise ConcurrentUpdate(f"branch '{branch}' moved; not deleting it")
            if self.head(f"refs/heads/{branch}") is not None:
                err = proc.stderr.decode(errors="replace").strip()
                raise RuntimeFailure(f"`git update-ref -d refs/heads/{branch}` failed: {err}")

    def create_branch(self, name: str, base_ref: str) -> str:
        """Create branch `name` at `base_ref`; ConcurrentUpdate if it already exists."""
        self.check_branch_name(name)
        base = self.head(base_ref)
        if base is None:
            raise BadInput(f"{self.root}: no commit or branch '{base_ref}' to branch from")
        if self.branch_exists(name):
            raise ConcurrentUpdate(f"branch '{name}' already exists")
        self.update_ref(name, base, None, reason=f"tradeloop: branch from {base_ref}")
        return base

    def make_commit(
        self,
        parent: str,
        path: str,
        content: str,
        message: str,
        when: datetime | None = None,
    ) -> str:
        """A commit object: `parent` with `path` set to `content`. No ref, index or file moves."""
        with tempfile.TemporaryDirectory(prefix="tradeloop-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._run("read-tree", parent, env=env)
            mode = "100644"
            listing = self._out("ls-tree", parent, "--", path)
            if listing:
                mode = listing.split()[0]
                if mode not in ("100644", "100755"):
                    raise BadInput(f"{path} is not a regular file at {parent[:12]} ({mode})")
            blob = self._out("hash-object", "-w", "--stdin", f"--path={path}", input=content)
            self._run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
            tree = self._out("write-tree", env=env)
        return self._out(
            *self.identity.config_args(),
            "commit-tree",
            tree,
            "-p",
            parent,
            "-F",
            "-",
            input=commit_message(message),
            env=date_env(when),
        )

    def commit_file(
        self,
        branch: str,
        path: str,
        content: str,
        message: str,
        when: datetime | None = None,
    ) -> str:
        """Commit ONE file to `branch`, checked out or not; return the branch's new head.

        Identical content makes no commit and returns the current head (idempotent). On a
        checked-out branch the working tree and index follow, and only `path` is committed; on
        any other branch nothing outside the object store and the ref changes.
        """
        old = self.branch_head(branch)
        if self.read_file(old, path) == content:
            return old
        tree = None if self.bare else self.checked_out(branch)
        if tree is None:
            new = self.make_commit(old, path, content, message, when)
            self.update_ref(branch, new, old, reason=f"tradeloop: {commit_subject(message)}")
            return new
        return self._commit_in_worktree(tree, branch, old, path, content, message, when)

    def _commit_in_worktree(
        self,
        tree: Path,
        branch: str,
        old: str,
        path: str,
        content: str,
        message: str,
        when: datetime | None,
    ) -> str:
        file = tree / path
        status = self._out(
            "status", "--porcelain=v1", "--untracked-files=all", "--", path, cwd=tree
        )
        if status:
            # Resuming after a crash between writing the file and committing it is the one case
            # where a dirty path is ours: the file already holds our content, the index nothing
            # else.
            new_blob = self._out("hash-object", "--stdin", f"--path={path}", input=content)
            staged = self._out("ls-files", "-s", "--", path, cwd=tree).split()
            staged_blob = staged[1] if len(staged) > 1 else None
            ours = (
                file.is_file()
                and file.read_bytes() == content.encode()
                and staged_blob in (None, new_blob, self.blob_sha(old, path))
            )
            if not ours:
                raise UncommittedEdits(
                    f"{file}: has uncommitted changes on checked-out branch '{branch}' "
                    f"({status.splitlines()[0].strip()}); commit or discard them, then retry — "
                    "tradeloop will not overwrite your edits"
                )
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.tradeloop-tmp")
        tmp.write_bytes(content.encode())
        os.replace(tmp, file)
        step = "add"
        proc = self._run("add", "--", path, cwd=tree, ok=(0, 1, 128))
        if proc.returncode == 0:
            step = "commit --only"
            proc = self._run(
                *self.identity.config_args(),
                "commit",
                "--quiet",
                "--no-verify",
                "--cleanup=verbatim",
                "--only",
                "-F",
                "-",
                "--",
                path,
                cwd=tree,
                input=commit_message(message),
                env=date_env(when),
                ok=(0, 1, 128),
            )
        if proc.returncode != 0:
            err = (proc.stderr + proc.stdout).decode(errors="replace").strip()
            self._restore(tree, branch, path)  # nothing of ours left for a retry to trip on
            if "index.lock" in err or self.branch_head(branch) != old:
                raise ConcurrentUpdate(f"branch '{branch}' is being changed by someone else: {err}")
            raise RuntimeFailure(f"`git {step} -- {path}` failed in {tree}: {err}")
        new = self.branch_head(branch)
        if not self.is_ancestor(old, new):
            raise ConcurrentUpdate(f"branch '{branch}' was rewritten while committing {path}")
        return new

    def _restore(self, tree: Path, branch: str, path: str) -> None:
        """Put `path` back as the branch has it: it was clean, or held only our write.

        The file is rewritten directly, so this works even when the index is locked.
        """
        self._run("reset", "-q", "--", path, cwd=tree, ok=(0, 1, 128))
        try:
            text = self.read_file(f"refs/heads/{branch}", path)
            if text is None:
                (tree / path).unlink(missing_ok=True)
            else:
                (tree / path).write_bytes(text.encode())
        except (BadInput, RuntimeFailure, OSError):
            pass  # best effort: the error being raised is the one that matters
