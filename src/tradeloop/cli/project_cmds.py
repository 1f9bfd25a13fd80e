"""`tradeloop init` and `tradeloop validate`."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from tradeloop.cli._common import JsonOpt, SpecOpt, emit_json, handle_errors, out
from tradeloop.errors import BadInput, RuntimeFailure


def example_spec(name: str = "demo") -> str:
    text = resources.files("tradeloop.templates").joinpath("tradeloop.yaml").read_text()
    return text.replace("name: demo", f"name: {name}", 1)


def _git(cwd: Path, *args: str) -> None:
    try:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise RuntimeFailure("git is not installed; tradeloop keeps intent in a git repo") from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeFailure(f"git {' '.join(args)} failed: {exc.stderr.strip()}") from exc


def init_project(directory: Path, name: str | None = None) -> Path:
    """A git repository with a commented, working example spec. Refuses to overwrite one."""
    from tradeloop.spec import SPEC_FILENAME, parse_spec

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
        _git(directory, "init", "-q", "-b", "main")
    _git(directory, "add", SPEC_FILENAME, ".gitignore")
    _git(
        directory,
        "-c",
        "user.name=tradeloop",
        "-c",
        "user.email=tradeloop@localhost",
        "commit",
        "-q",
        "-m",
        "tradeloop init: example pipeline spec",
    )
    return spec_path


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def init(
        directory: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path("."),
        name: Annotated[str | None, typer.Option(help="Pipeline name (default: folder).")] = None,
        json_: JsonOpt = False,
    ) -> None:
        """Create a git repository with a commented example spec that runs on the simulator."""
        path = init_project(directory, name)
        if json_:
            emit_json({"spec": str(path), "directory": str(path.parent)})
        else:
            out.print(
                f"created {path}\nnext: cd {directory} && tradeloop validate && tradeloop data check"
            )

    @app.command()
    @handle_errors
    def validate(spec: SpecOpt = None, json_: JsonOpt = False) -> None:
        """Check the spec: unknown keys, types, ranges and cross-references, with line numbers."""
        from tradeloop.spec import format_duration, load_spec

        loaded = load_spec(spec)
        s = loaded.spec
        doc = {
            "ok": True,
            "spec": str(loaded.path),
            "name": s.name,
            "spec_hash": s.spec_hash(),
            "source": s.data.source,
            "frequency": format_duration(s.data.frequency),
            "features": s.feature_names,
            "model": s.model.type,
            "task": s.model.task,
        }
        if json_:
            emit_json(doc)
        else:
            out.print(
                f"{loaded.path}: ok — pipeline '{s.name}', {len(s.features)} features, "
                f"{s.model.type} {s.model.task}, data from {s.data.source}"
            )
