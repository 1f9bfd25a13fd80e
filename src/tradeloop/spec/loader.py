"""Loading the spec from YAML, with errors that name the file, line and field path.

Pydantic reports where a value sits in the parsed data; this maps that back to the YAML line
(and, for a misspelt key, suggests the field meant), so every problem reads
`tradeloop.yaml:12: data.columns.open: ...`.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from tradeloop.errors import SpecError
from tradeloop.spec.pipeline import Spec

SPEC_FILENAME = "tradeloop.yaml"


class LoadedSpec(typing.NamedTuple):
    spec: Spec
    path: Path

    @property
    def root(self) -> Path:
        return self.path.parent


_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster parsing


class _Loader(_BASE_LOADER):  # type: ignore[misc,valid-type]  # base picked at run time
    """YAML 1.2 booleans: only true/false, so keys like `on:` stay strings."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _ch in "tTfF":
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), [_ch]
    )


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = k.start_mark.line + 1
            _line_map(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic's loc without union tags and validator segments: the path as written in YAML."""
    out: list[Any] = []
    cur: Any = data
    for part in loc:
        if (isinstance(cur, dict) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        ):
            cur = cur[part]
        elif isinstance(cur, dict) and (
            part == cur.get("type") or str(part).startswith("function-")
        ):
            continue  # a discriminated-union tag or a validator wrapper: not in the YAML
        else:
            cur = None  # the missing or unknown key itself, or a value inside a scalar
        out.append(part)
    return tuple(out)


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [u for a in typing.get_args(tp) for u in _unwrap(a)]
    if origin in (list, dict):
        return _unwrap(typing.get_args(tp)[-1])
    return [tp]


def _allowed_keys(path: tuple[Any, ...], data: Any) -> list[str]:
    """The field names allowed at the mapping that holds the last element of `path`."""
    models: list[Any] = [Spec]
    cur = data
    for part in path[:-1]:
        nxt: list[Any] = []
        for m in models:
            if isinstance(m, type) and issubclass(m, BaseModel) and isinstance(part, str):
                for fname, f in m.model_fields.items():
                    if part in (fname, f.alias):
                        nxt.extend(_unwrap(f.annotation))
        if isinstance(part, int):
            nxt = models
        cur = (
            cur.get(part)
            if isinstance(cur, dict)
            else (cur[part] if isinstance(cur, list) else None)
        )
        if isinstance(cur, dict) and "type" in cur:
            tagged = [
                m
                for m in nxt
                if isinstance(m, type)
                and issubclass(m, BaseModel)
                and "type" in m.model_fields
                and cur["type"] in typing.get_args(m.model_fields["type"].annotation)
            ]
            nxt = tagged or nxt
        models = nxt
    keys: list[str] = []
    for m in models:
        if isinstance(m, type) and issubclass(m, BaseModel):
            keys.extend(f.alias or n for n, f in m.model_fields.items())
    return sorted(set(keys))


def _format_errors(
    err: ValidationError, data: Any, lines: dict[tuple[Any, ...], int], filename: str
) -> list[str]:
    problems: list[str] = []
    for e in err.errors():
        path = _data_path(data, tuple(e["loc"]))
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in lines:
                line = lines[path[:n]]
                break
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(
            ".[", "["
        )
        where = f"{filename}:{line}" if line else filename
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(path, data)
            close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
            hint = (
                f" (did you mean {close[0]}?)"
                if close
                else (f" (allowed: {', '.join(allowed)})" if allowed else "")
            )
            problems.append(f"{where}: {dotted}: unknown key{hint}")
        elif e["type"] == "missing":
            problems.append(f"{where}: {dotted}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            label = dotted or "(top level)"
            problems.append(f"{where}: {label}: {msg}")
    return problems


def parse_spec(text: str, filename: str = SPEC_FILENAME) -> Spec:
    """Parse and validate spec text; raise SpecError with file:line: path: message lines."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{filename}{line}: invalid YAML: {problem}"]) from exc
    if not isinstance(data, dict):
        raise SpecError([f"{filename}:1: the spec must be a mapping of sections (name, data, ...)"])
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_map(node, (), lines)
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, data, lines, filename)) from exc


def load_spec(path: str | Path | None = None) -> LoadedSpec:
    """Load `tradeloop.yaml` from the current folder, or the given path (a file or a folder)."""
    p = Path(path) if path is not None else Path.cwd() / SPEC_FILENAME
    if p.is_dir():
        p = p / SPEC_FILENAME
    if not p.exists():
        raise SpecError([f"{p}: no spec file here (make one with `tradeloop init DIR`)"])
    return LoadedSpec(parse_spec(p.read_text(), filename=p.name), p.resolve())
