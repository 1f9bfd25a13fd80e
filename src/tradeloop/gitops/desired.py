"""The desired state: the spec and the production pin at the head of the tracked branch.

Read from commits, never the working tree: what someone is editing and hasn't committed is not
intent yet, and a controller must see the same thing whichever folder it runs in. The spec and
the pin are read from one commit, so they always belong together.

The pin file (`production.yaml` by default, next to `tradeloop.yaml`) is small, human-editable
YAML that says which version of the model serves production:

    model: demo
    version: "3"         # what serves production (null: nothing yet)
    previous: "2"        # what an instant rollback returns to
    updated: "2024-03-01T09:30:00+00:00"
    reason: "canary analysis promote (ci [0.0012, 0.0040])"
    rejected: ["4"]      # versions rolled back: never rolled out again
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tradeloop.errors import BadInput, SpecError
from tradeloop.gitops.repo import GitRepo
from tradeloop.spec import SPEC_FILENAME, GitSpec, Spec, load_yaml
from tradeloop.spec.catalog import parse_pipeline

PIN_KEYS = ("model", "version", "previous", "updated", "reason", "rejected")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # also safe inside a branch name
_HEADER = (
    "# The model version serving production. tradeloop's Deployer makes serving follow this\n"
    "# file on the tracked branch; change it by commit or pull request. Versions listed under\n"
    "# `rejected` were rolled back and are never rolled out again.\n"
)


class PinError(BadInput):
    """The pin file is malformed: every problem names the file, the line and the key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Pin:
    model: str
    version: str | None
    previous: str | None = None
    updated: datetime | None = None
    reason: str = ""
    rejected: tuple[str, ...] = ()

    def to_yaml(self) -> str:
        """Stable text (same pin, same bytes), so rewriting an unchanged pin commits nothing."""

        def scalar(v: str | None) -> str:
            return "null" if v is None else json.dumps(v, ensure_ascii=False)

        updated = self.updated.astimezone(UTC).isoformat() if self.updated else None
        rejected = ", ".join(json.dumps(v) for v in self.rejected)
        return (
            _HEADER
            + f"model: {scalar(self.model)}\n"
            + f"version: {scalar(self.version)}\n"
            + f"previous: {scalar(self.previous)}\n"
            + f"updated: {scalar(updated)}\n"
            + f"reason: {scalar(self.reason)}\n"
            + f"rejected: [{rejected}]\n"
        )

    @classmethod
    def from_yaml(cls, text: str, filename: str = "production.yaml") -> Pin:
        """Parse and validate; PinError with `file:line: key: problem` lines."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{filename}:{mark.line + 1}" if mark is not None else filename
            problem = getattr(exc, "problem", None) or str(exc)
            raise PinError([f"{where}: invalid YAML: {problem}"]) from exc
        if not isinstance(data, dict):
            raise PinError([f"{filename}:1: the pin must be a mapping (model, version, ...)"])
        lines: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            for k, _v in node.value:
                lines[str(k.value)] = k.start_mark.line + 1
        problems: list[str] = []

        def bad(key: str, msg: str) -> None:
            line = lines.get(key)
            where = f"{filename}:{line}" if line else filename
            problems.append(f"{where}: {key}: {msg}")

        for key in data:
            if key not in PIN_KEYS:
                bad(str(key), f"unknown key (allowed: {', '.join(PIN_KEYS)})")

        def name(key: str, value: Any, required: bool) -> str | None:
            if value is None:
                if required:
                    bad(key, "required key is missing" if key not in data else "must not be null")
                return None
            if isinstance(value, bool) or not isinstance(value, str | int):
                bad(key, f"must be a name or a version number in quotes, not {value!r}")
                return None
            s = str(value)
            if not NAME_PATTERN.match(s):
                bad(key, f"{s!r} is not a valid name (letters, digits, '.', '_', '-')")
                return None
            return s

        model = name("model", data.get("model"), required=True)
        version = name("version", data.get("version"), required=False)
        previous = name("previous", data.get("previous"), required=False)
        updated = _parse_time(data.get("updated"), lambda m: bad("updated", m))
        reason = data.get("reason") or ""
        if not isinstance(reason, str):
            bad("reason", "must be text")
            reason = ""
        raw_rejected = data.get("rejected") or []
        rejected: list[str] = []
        if not isinstance(raw_rejected, list):
            bad("rejected", 'must be a list of versions, e.g. ["4"]')
        else:
            for v in raw_rejected:
                s = name("rejected", v, required=True)
                if s is not None and s not in rejected:
                    rejected.append(s)
        if version is not None and version in rejected:
            bad("version", f"{version} is also listed under rejected; remove it from one of them")
        if problems:
            raise PinError(problems)
        assert model is not None
        return cls(model, version, previous, updated, reason, tuple(rejected))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "previous": self.previous,
            "updated": self.updated.isoformat() if self.updated else None,
            "reason": self.reason,
            "rejected": list(self.rejected),
        }


def _parse_time(value: Any, bad: Callable[[str], None]) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            bad(f"{value!r} is not an ISO time (e.g. 2024-03-01T09:30:00+00:00)")
            return None
    else:
        bad(f"must be an ISO time, not {value!r}")
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class DesiredState:
    """What git says should exist: the spec and the pin of one commit of the tracked branch."""

    spec: Spec
    spec_sha: str  # the commit both were read from
    pin: Pin | None
    branch: str = "main"
    spec_path: str = SPEC_FILENAME  # repository paths
    pin_path: str = "production.yaml"

    def to_dict(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "commit": self.spec_sha,
            "spec_path": self.spec_path,
            "spec_hash": self.spec.spec_hash(),
            "name": self.spec.name,
            "pin_path": self.pin_path,
            "pin": self.pin.to_dict() if self.pin else None,
        }


def pin_path(repo: GitRepo, pin_file: str) -> str:
    """The pin's repository path: `pin_file` is relative to the folder of `tradeloop.yaml`."""
    p = PurePosixPath(pin_file)
    if not pin_file or p.is_absolute() or ".." in p.parts or pin_file.endswith("/"):
        raise BadInput(
            f"deployment.git.pin_file: {pin_file!r} must be a file path inside the project "
            "(relative, without '..')"
        )
    return repo.rel(str(p))


def read_pin(repo: GitRepo, ref: str, path: str, label: str | None = None) -> Pin | None:
    """The pin at `ref` (a commit or branch), or None when the file isn't there."""
    text = repo.read_file(ref, path)
    if text is None:
        return None
    return Pin.from_yaml(text, filename=f"{label or ref}:{path}")


def read_desired(
    repo_path: str | Path,
    branch: str | GitSpec = "main",
    pin_file: str | None = None,
    *,
    repo: GitRepo | None = None,
    spec_file: str = SPEC_FILENAME,
) -> DesiredState:
    """The spec and pin at the head of `branch`, never the working tree.

    `branch` may be a `GitSpec` (its branch and pin_file). Without a pin_file the spec on the
    branch says which file it is. Errors: BadInput for a folder that isn't a repository or a
    missing branch; SpecError for the spec (named `<branch>:tradeloop.yaml:LINE`); PinError.
    `spec_file` is the pipeline's file from the project folder (`pipelines/<name>.yaml`).
    """
    if isinstance(branch, GitSpec):
        pin_file = pin_file or branch.pin_file
        branch = branch.branch
    repo = repo or GitRepo(repo_path)
    sha = repo.branch_head(branch)
    spec_path = repo.rel(spec_file)
    label = f"{branch}:{spec_path}"
    text = repo.read_file(sha, spec_path)
    if text is None:
        raise SpecError(
            [f"{label}: no spec committed on branch '{branch}' (commit {spec_file} to it)"]
        )
    spec = parse_pipeline(text, spec_file, filename=label)
    ppath = pin_path(repo, pin_file or spec.deployment.git.pin_file)
    pin = read_pin(repo, sha, ppath, label=branch)
    if pin is not None and pin.model != spec.name:
        raise PinError(
            [
                f"{branch}:{ppath}: model: pins '{pin.model}' but the spec on '{branch}' "
                f"is pipeline '{spec.name}'"
            ]
        )
    return DesiredState(spec, sha, pin, branch, spec_path, ppath)
