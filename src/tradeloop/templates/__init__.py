"""Specs shipped with tradeloop, and a new project made from one.

`tradeloop.yaml` is the commented example `tradeloop init` writes; `demo.yaml` is the pipeline
`tradeloop demo` runs. Only the spec loader and `gitops.git` are used here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tradeloop.errors import BadInput
from tradeloop.gitops.git import run_git
from tradeloop.spec import SPEC_FILENAME, parse_spec

__all__ = ["demo_spec", "example_spec", "git", "git_commit", "init_project"]

COMMITTER = ("-c", "user.name=tradeloop", "-c", "user.email=tradeloop@localhost")


def _template(filename: str) -> str:
    return resources.files(__name__).joinpath(filename).read_text()


def example_spec(name: str = "demo") -> str:
    return _template(SPEC_FILENAME).replace("name: demo", f"name: {name}", 1)


def demo_spec() -> str:
    """The demo's pipeline: a regime change the monitor must catch (see `tradeloop.demo`)."""
    return _template("demo.yaml")


def git(cwd: Path, *args: str) -> None:
    run_git(args, cwd=cwd)


def git_commit(directory: Path, message: str, *paths: str) -> None:
    """Stage `paths` and commit them as tradeloop (the user's own identity is not needed)."""
    git(directory, "add", *paths)
    git(directory, *COMMITTER, "commit", "-q", "-m", message)


def init_project(directory: Path, name: str | None = None) -> Path:
    """A git repository with a commented, working example spec. Refuses to overwrite one."""
    directory = directory.resolve()
    spec_path = directory / SPEC_FILENAME
    if spec_path.exists():
        raise BadInput(f"{spec_path} already exists; not overwriting it")
    pname = name or directory.name.lower().replace(" ", "-")
    text = example_spec(pname)
    parse_spec(text)  # the example must always be valid
    directory.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(text)
    (directory / ".gitignore").write_text(".tradeloop/\n")
    if not (directory / ".git").exists():
        git(directory, "init", "-q", "-b", "main")
    git_commit(directory, "tradeloop init: example pipeline spec", SPEC_FILENAME, ".gitignore")
    return spec_path
