"""Reading a branch's commit from git's own files: a loose ref, else `packed-refs`.

The controllers look at the tracked branch on every run, and a `git rev-parse` process costs
~5 ms each time (two or four per controller run before this). git updates a ref by writing a
lock file and renaming it over the old one, so reading the file is consistent. Anything
unusual (a symbolic ref, a malformed file, an odd name) returns None: ask git itself.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["read_branch"]

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"  # a linked worktree keeps branches in the main repository
    if common.is_file():
        return (git_dir / common.read_text().strip()).resolve()
    return git_dir


def read_branch(git_dir: Path, ref: str) -> str | None:
    """The sha of `ref` (`refs/heads/<branch>`); "" when there is no such branch; None when
    only git can say."""
    if ".." in ref or ref.endswith((".lock", "/")):
        return None
    base = _common_dir(git_dir)
    try:
        text = (base / ref).read_text().strip()
    except FileNotFoundError:
        text = ""
    except OSError:
        return None
    if text:
        return text if _SHA.fullmatch(text) else None
    try:
        packed = (base / "packed-refs").read_text()
    except FileNotFoundError:
        return ""
    except OSError:
        return None
    for line in packed.splitlines():
        if line.endswith(" " + ref):
            sha = line.split(" ", 1)[0]
            return sha if _SHA.fullmatch(sha) else None
    return ""
