"""The one way tradeloop runs the git CLI: a scrubbed environment, a timeout, our errors.

Every git call goes through `run_git`, so none inherits `GIT_DIR`-style variables (set when
tradeloop runs inside a git hook, or by a user's shell) that would point it at another
repository, index or identity than the one meant, and none waits on a password prompt.

    out = run_git(["rev-parse", "HEAD"], cwd=root).stdout.decode().strip()

A missing git binary, a timeout and (unless `ok` allows the exit code) a failure all raise
`RuntimeFailure` naming the command and git's stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from tradeloop.errors import RuntimeFailure

GIT_TIMEOUT_S = 60.0

# Variables that would point git at another repository, index or identity than the one we mean.
# Never inherited.
GIT_ENV_DROP = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_COMMITTER_DATE",
    "GIT_CONFIG_PARAMETERS",
)

__all__ = ["GIT_ENV_DROP", "GIT_TIMEOUT_S", "git_env", "run_git", "show_command"]


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without `GIT_ENV_DROP`, never prompting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in GIT_ENV_DROP}
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a controller
    if extra:
        env.update(extra)
    return env


def show_command(args: Sequence[str]) -> str:
    """`git <args>` for an error message, without the `-c key=value` identity noise."""
    shown: list[str] = ["git"]
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-c":
            skip = True
            continue
        shown.append(a if " " not in a else repr(a))
    return " ".join(shown)


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    ok: Collection[int] | None = (0,),
    timeout: float = GIT_TIMEOUT_S,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git <args>` in `cwd`; `ok=None` accepts any exit code (the caller reads it)."""
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(env),
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        raise RuntimeFailure("git is not installed; tradeloop keeps intent in a git repo") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeFailure(
            f"`{show_command(args)}` took more than {timeout:.0f}s in {cwd} "
            "(a credential or signing prompt?)"
        ) from exc
    if ok is not None and proc.returncode not in ok:
        err = proc.stderr.decode(errors="replace").strip()
        raise RuntimeFailure(
            f"`{show_command(args)}` failed in {cwd} (exit {proc.returncode}): {err}"
        )
    return proc
