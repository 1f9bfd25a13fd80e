"""The pipelines of a project: a root `tradeloop.yaml`, and one file per pipeline under
`pipelines/`.

A trading team runs dozens of models from one repository, so a project is a folder (a git
repository, or a folder inside one) holding `pipelines/<name>.yaml` files, each a whole spec
with its own `name:`. A root `tradeloop.yaml` alone is still a one-pipeline project, with the
paths it always had. Both may be present: the root spec is then one pipeline among the others.

Relative paths in a spec (a CSV, a pin file) are relative to the project folder, wherever the
spec file sits. A pipeline file that does not name its pin file gets its own,
`production/<name>.yaml`: one pin per pipeline in git, never a shared one.

A pipeline file that does not validate does not stop the others: `Catalog.errors` keeps it,
with its file and line, and the controllers park it under its name (`Catalog.broken`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tradeloop.errors import BadInput, SpecError
from tradeloop.spec.loader import SPEC_FILENAME, LoadedSpec, parse_spec
from tradeloop.spec.pipeline import Spec

__all__ = [
    "PIPELINES_DIR",
    "Broken",
    "Catalog",
    "is_pipeline_file",
    "load_catalog",
    "parse_pipeline",
    "project_root",
]

PIPELINES_DIR = "pipelines"
_SUFFIXES = (".yaml", ".yml")
_NAME = re.compile(r"^\s*name\s*:\s*['\"]?([A-Za-z0-9][A-Za-z0-9._-]{0,99})['\"]?\s*(#.*)?$", re.M)


def is_pipeline_file(relpath: str) -> bool:
    """`relpath` (from the project folder) is a file under `pipelines/`."""
    parts = PurePosixPath(relpath).parts
    return len(parts) == 2 and parts[0] == PIPELINES_DIR and relpath.endswith(_SUFFIXES)


def project_root(spec_path: Path) -> Path:
    """The project folder of a spec file: the folder above `pipelines/` for a pipeline file."""
    parent = spec_path.parent
    if parent.name == PIPELINES_DIR and spec_path.suffix in _SUFFIXES:
        return parent.parent
    return parent


def parse_pipeline(text: str, relpath: str, filename: str | None = None) -> Spec:
    """Parse one pipeline's spec, with the defaults its place in the project implies."""
    spec = parse_spec(text, filename=filename or relpath)
    if is_pipeline_file(relpath):
        git = spec.deployment.git
        if "pin_file" not in git.model_fields_set:
            git = git.model_copy(update={"pin_file": f"production/{spec.name}.yaml"})
            deployment = spec.deployment.model_copy(update={"git": git})
            spec = spec.model_copy(update={"deployment": deployment})
    return spec


@dataclass(frozen=True)
class Broken:
    """A pipeline file that does not validate: its name (or the file's stem), file and why."""

    name: str
    path: Path
    relpath: str
    error: SpecError


@dataclass
class Catalog:
    root: Path
    pipelines: dict[str, LoadedSpec] = field(default_factory=dict)
    broken: list[Broken] = field(default_factory=list)

    @property
    def multi(self) -> bool:
        """Pipelines come from `pipelines/` (per-pipeline state folders, namespaced controllers)."""
        return any(
            relpath(self.root, s.path) != SPEC_FILENAME for s in self.pipelines.values()
        ) or any(b.relpath != SPEC_FILENAME for b in self.broken)

    @property
    def names(self) -> list[str]:
        return sorted([*self.pipelines, *(b.name for b in self.broken)])

    def get(self, name: str) -> LoadedSpec:
        if name in self.pipelines:
            return self.pipelines[name]
        for b in self.broken:
            if b.name == name:
                raise b.error
        raise BadInput(
            f"{self.root}: no pipeline named {name!r} (pipelines: {', '.join(self.names) or 'none'})"
        )

    def only(self) -> LoadedSpec:
        """The one pipeline of a project that has one; else a BadInput naming the choices."""
        if len(self.pipelines) + len(self.broken) == 1:
            if self.broken:
                raise self.broken[0].error
            return next(iter(self.pipelines.values()))
        raise BadInput(
            f"{self.root} holds {len(self.names)} pipelines ({', '.join(self.names)}); "
            "pass --pipeline NAME"
        )


def relpath(root: Path, path: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _files(root: Path) -> list[Path]:
    files = [root / SPEC_FILENAME] if (root / SPEC_FILENAME).is_file() else []
    pdir = root / PIPELINES_DIR
    if pdir.is_dir():
        files += sorted(p for p in pdir.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
    return files


def _guess_name(text: str, path: Path) -> str:
    m = _NAME.search(text)
    return m.group(1) if m else path.stem


def load_catalog(directory: str | Path) -> Catalog:
    """Every pipeline of the project at `directory`. Two files with the same pipeline name are
    refused, naming both; a file that does not validate is kept in `broken`."""
    root = Path(directory).resolve()
    files = _files(root)
    if not files:
        raise SpecError(
            [
                f"{root}: no spec file here: neither {SPEC_FILENAME} nor {PIPELINES_DIR}/*.yaml "
                "(make one with `tradeloop init DIR`)"
            ]
        )
    cat = Catalog(root)
    where: dict[str, str] = {}
    for path in files:
        rel = relpath(root, path)
        text = path.read_text()
        try:
            spec = parse_pipeline(text, rel)
            name = spec.name
        except SpecError as exc:
            name = _guess_name(text, path)
            cat.broken.append(Broken(name, path.resolve(), rel, exc))
            spec = None
        if name in where:
            raise SpecError(
                [
                    f"{rel}: pipeline name {name!r} is also the name in {where[name]}; "
                    "each pipeline needs its own name"
                ]
            )
        where[name] = rel
        if spec is not None:
            cat.pipelines[name] = LoadedSpec(spec, path.resolve())
    return cat


def load_pipeline(path: str | Path | None, pipeline: str | None = None) -> LoadedSpec:
    """One pipeline's spec: `path` is a spec file or a project folder (default: the current
    one); `pipeline` picks one of a folder's pipelines (needed when it holds several)."""
    p = Path(path) if path is not None else Path.cwd()
    if p.is_dir():
        cat = load_catalog(p)
        return cat.get(pipeline) if pipeline else cat.only()
    if not p.exists():
        raise SpecError([f"{p}: no spec file here (make one with `tradeloop init DIR`)"])
    root = project_root(p.resolve())
    spec = parse_pipeline(p.read_text(), relpath(root, p), filename=p.name)
    if pipeline is not None and spec.name != pipeline:
        raise BadInput(f"{p} is pipeline {spec.name!r}, not {pipeline!r}")
    return LoadedSpec(spec, p.resolve())
