"""What every command shares: the --spec and --json options, output, and exit codes.

Exit 0 on success, 1 on a runtime failure, 2 on bad input (spec, data, arguments), with the
message on stderr; `--json` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from tradeloop.errors import TradeloopError

if TYPE_CHECKING:
    from tradeloop.project import Project
    from tradeloop.security.tokens import TokenInfo
    from tradeloop.spec.catalog import Broken

F = TypeVar("F", bound=Callable[..., Any])

SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--spec", help="Spec file or folder (default: ./tradeloop.yaml).", show_default=False
    ),
]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        help="Which pipeline of the project (needed when it holds several; "
        "default: $TRADELOOP_PIPELINE).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        help="API token to act with (default: $TRADELOOP_TOKEN, then <state>/admin.token).",
        show_default=False,
    ),
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def load_project(spec: Path | None, pipeline: str | None = None, *, any_: bool = False) -> Project:
    """One pipeline's project, imported on first use: `--help` must not pay for the spec and
    the stores. `pipeline` (or $TRADELOOP_PIPELINE) picks one of a folder's pipelines; `any_`
    takes the first valid one when none is named (commands about the whole project: the
    audit log, tokens)."""
    from tradeloop.project import Project

    pipeline = pipeline or os.environ.get("TRADELOOP_PIPELINE") or None
    if any_ and pipeline is None:
        from tradeloop.spec.catalog import load_catalog

        where = spec if spec is not None else Path.cwd()
        if where.is_dir():
            cat = load_catalog(where)
            if cat.pipelines:
                pipeline = sorted(cat.pipelines)[0]
    return Project.load(spec, pipeline=pipeline)


def load_projects(
    spec: Path | None, pipeline: str | None = None, *, share_store: bool = True
) -> tuple[list[Project], list[Broken]]:
    """Every pipeline of the project (or just `pipeline`), sharing one store (unless not
    `share_store`: readers that never open it), and those whose spec does not validate.
    None valid at all: the first one's error."""
    from tradeloop.project import Project
    from tradeloop.spec.catalog import load_catalog

    pipeline = pipeline or os.environ.get("TRADELOOP_PIPELINE") or None
    where = spec if spec is not None else Path.cwd()
    if pipeline is not None or not where.is_dir():
        return [load_project(spec, pipeline)], []
    cat = load_catalog(where)
    if not cat.pipelines:
        raise cat.broken[0].error
    first: Project | None = None
    projects: list[Project] = []
    for name in sorted(cat.pipelines):
        loaded = cat.pipelines[name]
        if first is None or not share_store:
            p = Project(loaded.spec, loaded.path)
        else:
            p = first.sibling(*loaded)
        first = first or p
        projects.append(p)
    return projects, list(cat.broken)


def caller(project: Project, token: str | None, role: str, action: str) -> TokenInfo:
    """Who runs this mutating command: a token with `role` or higher, else exit 2."""
    from tradeloop.security.identity import plain_token, require

    return require(project.store, plain_token(token, project.state_dir), role, action)


def acting_as(project: Project, token: str | None) -> str:
    """Who a command that any local user may run (`train`) acts as, for the audit log and the
    version's `registered_by`: the token's user when one is at hand (--token, $TRADELOOP_TOKEN
    or the local credential), else `local:<os user>`, so the actor is never blank or generic."""
    import getpass

    from tradeloop.security.identity import plain_token, require

    plain = plain_token(token, project.state_dir)
    if plain:
        return require(project.store, plain, "viewer", "train").actor
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"local:uid{os.getuid()}"


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn our exceptions into a message on stderr and the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TradeloopError as exc:
            err.print("[red]error:[/red] ", end="", markup=True)
            err.print(str(exc), markup=False)
            raise typer.Exit(exc.exit_code) from exc
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug or a library failure: exit 1, traceback on request
            if os.environ.get("TRADELOOP_DEBUG"):
                raise
            err.print(f"[red]error:[/red] {type(exc).__name__}: ", end="", markup=True)
            err.print(str(exc), markup=False)
            err.print("(set TRADELOOP_DEBUG=1 for the traceback)")
            raise typer.Exit(1) from exc
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps the signature F has
