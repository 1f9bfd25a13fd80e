"""Versions, tags and aliases read (and aliases moved) on MLflow's SQL tables, without MLflow.

`tradeloop deploy`, `models list` and `models show` must answer within 2 s, and importing
MLflow and starting its client (which checks both store schemas against ~50 migrations) takes
about 2.5 s on an idle machine, over 8 s under load. The answers they need are a few rows, so
for SQL tracking stores they are read (stdlib sqlite3 for SQLite files, SQLAlchemy core
else) from the tables `alias_reader`
already reads (stable from MLflow 2.3 to 3.x). Moving an alias is one row in
`registered_model_aliases`, the same merge MLflow's `set_registered_model_alias` does.
tests/registry/test_sql_registry.py holds every answer and write to MlflowClient's own on real
stores. Other stores (`http:`, `file:`) go through `Registry`, slower but right.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from tradeloop.errors import HashMismatch, NotFound, RuntimeFailure
from tradeloop.registry.alias_reader import DEFAULT_WORKSPACE, DELETED_STAGE, SQL_SCHEMES
from tradeloop.registry.mlflow_registry import ModelVersion, Registry, sha256_file

Params = dict[str, Any]


class _Db:
    """Text SQL with `:name` parameters, on stdlib sqlite3 for SQLite files (importing
    SQLAlchemy alone costs ~0.4 s of a CLI command), else on a SQLAlchemy engine."""

    def __init__(self, tracking_uri: str) -> None:
        self.file: Path | None = None
        self.engine: Any = None
        scheme = tracking_uri.split(":", 1)[0].lower()
        if scheme == "sqlite" and tracking_uri.startswith("sqlite:///"):
            path = tracking_uri.removeprefix("sqlite:///")
            if path and path != ":memory:":
                self.file = Path(path)
                if not self.file.exists():
                    raise NotFound(f"no MLflow store at {tracking_uri}: nothing was trained yet")
                return
        from sqlalchemy import create_engine

        from tradeloop.store.engine import normalize_url

        self.engine = create_engine(normalize_url(tracking_uri))

    def _sqlite(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.file or "", timeout=30, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        if self.file is not None:
            with contextlib.closing(self._sqlite()) as conn:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        from sqlalchemy import text

        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(sql), params).all()]

    def write(self, statements: list[tuple[str, Params]]) -> None:
        """All statements in one transaction."""
        if self.file is not None:
            with contextlib.closing(self._sqlite()) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, params in statements:
                        conn.execute(sql, params)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            return
        from sqlalchemy import text

        with self.engine.begin() as c:
            for sql, params in statements:
                c.execute(text(sql), params)

    def columns(self, table: str) -> list[str]:
        """The table's columns; empty when it does not exist."""
        if self.file is not None:
            return [r[1] for r in self.rows(f"PRAGMA table_info({table})", {})]
        from sqlalchemy import inspect

        insp = inspect(self.engine)
        return [c["name"] for c in insp.get_columns(table)] if insp.has_table(table) else []

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def is_sql(tracking_uri: str) -> bool:
    return tracking_uri.split(":", 1)[0].split("+", 1)[0].lower() in SQL_SCHEMES


class SqlRegistry:
    """The part of `Registry` that CLI commands need, on a SQL tracking store's tables."""

    def __init__(self, tracking_uri: str) -> None:
        self.uri = tracking_uri
        self.db = _Db(tracking_uri)
        cols = self.db.columns("model_versions")
        self.ready = bool(cols)
        self.workspaced = "workspace" in cols

    def close(self) -> None:
        self.db.close()

    def _ws(self, alias: str) -> str:
        return f" AND {alias}.workspace = :ws" if self.workspaced else ""

    def _params(self, **kw: Any) -> dict[str, Any]:
        return {**kw, "ws": DEFAULT_WORKSPACE} if self.workspaced else kw

    def _read(self, name: str, version: str | None) -> list[ModelVersion]:
        if not self.ready:
            return []
        one = " AND v.version = :version" if version is not None else ""
        extra = {"version": int(version)} if version is not None else {}
        q_versions = (
            "SELECT v.version, v.run_id, v.source, v.creation_time FROM model_versions v"
            " WHERE v.name = :name AND v.current_stage <> :deleted" + one + self._ws("v")
        )
        q_tags = (
            "SELECT t.version, t.key, t.value FROM model_version_tags t"
            " WHERE t.name = :name" + one.replace("v.", "t.") + self._ws("t")
        )
        q_aliases = (
            "SELECT a.alias, a.version FROM registered_model_aliases a WHERE a.name = :name"
            + self._ws("a")
        )
        p = self._params(name=name, deleted=DELETED_STAGE, **extra)
        try:
            rows = self.db.rows(q_versions, p)
            tags = self.db.rows(q_tags, p)
            aliases = self.db.rows(q_aliases, self._params(name=name))
        except Exception as exc:  # sqlite3.Error or SQLAlchemy's DBAPIError: said plainly
            raise RuntimeFailure(f"cannot read versions of {name!r}: {exc}") from exc
        by_tag: dict[str, dict[str, str]] = {}
        for v, k, val in tags:
            by_tag.setdefault(str(v), {})[k] = val
        by_alias: dict[str, list[str]] = {}
        for a, v in aliases:
            by_alias.setdefault(str(v), []).append(a)
        out = [
            ModelVersion(
                name,
                str(v),
                run_id,
                source,
                by_tag.get(str(v), {}),
                sorted(by_alias.get(str(v), [])),
                int(created or 0),
            )
            for v, run_id, source, created in rows
        ]
        return sorted(out, key=lambda m: int(m.version))

    def versions(self, name: str, *, include_incomplete: bool = False) -> list[ModelVersion]:
        return [v for v in self._read(name, None) if include_incomplete or v.complete]

    def get(self, name: str, version: str) -> ModelVersion:
        if not str(version).isdigit():
            raise NotFound(f"model {name!r} has no version {version!r}")
        found = self._read(name, str(version))
        if not found:
            raise NotFound(f"model {name!r} has no version {version!r}")
        if not found[0].complete:
            raise NotFound(f"model {name!r} version {version} is incomplete (registration died)")
        return found[0]

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        named = [v for v in self.versions(name) if alias in v.aliases]
        return named[0] if named else None

    def _unset(self, name: str, alias: str) -> tuple[str, Params]:
        return (
            "DELETE FROM registered_model_aliases WHERE name = :name AND alias = :alias"
            + self._ws("registered_model_aliases"),
            self._params(name=name, alias=alias),
        )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `alias` at a complete `version`, as MLflow's merge of the alias row does."""
        self.get(name, version)
        cols, vals = ("workspace, ", ":ws, ") if self.workspaced else ("", "")
        insert = (
            f"INSERT INTO registered_model_aliases ({cols}name, alias, version)"
            f" VALUES ({vals}:name, :alias, :version)"
        )
        params = self._params(name=name, alias=alias, version=int(version))
        self.db.write([self._unset(name, alias), (insert, params)])

    def delete_alias(self, name: str, alias: str) -> None:
        self.db.write([self._unset(name, alias)])

    def onnx_path(self, v: ModelVersion) -> Path | None:
        """The version's local ONNX file, or None when its artifacts are not on this disk."""
        from urllib.parse import unquote, urlparse

        from tradeloop.registry.mlflow_registry import ONNX_FILE

        parsed = urlparse(v.source)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path)) / ONNX_FILE
        if parsed.scheme == "" and v.source:
            return Path(v.source) / ONNX_FILE
        return None


def open_registry(tracking_uri: str, artifact_root: str | None = None) -> SqlRegistry | Registry:
    """The fast SQL view for SQL stores that exist, else MLflow's client."""
    if is_sql(tracking_uri):
        try:
            return SqlRegistry(tracking_uri)
        except NotFound:
            pass  # no store yet: MLflow's client creates it (and says there is no model)
    return Registry.open(tracking_uri, artifact_root)


def verify_artifact(reg: SqlRegistry | Registry, v: ModelVersion) -> None:
    """Refuse (HashMismatch, NotFound) a version whose ONNX file is missing or whose sha256 is
    not the registered `onnx_sha256`, as the gateway would when loading it."""
    path = reg.onnx_path(v) if isinstance(reg, SqlRegistry) else None
    if path is None:
        full = reg if isinstance(reg, Registry) else Registry.open(reg.uri)
        full.fetch_onnx(v.name, v.version)
        return
    if not path.exists():
        raise NotFound(f"{v.name} v{v.version}: no {path.name} at {path.parent}")
    actual = sha256_file(path)
    if actual != v.tags.get("onnx_sha256"):
        raise HashMismatch(
            f"{v.name} v{v.version}: {path.name} sha256 {actual[:12]}… does not match the "
            f"registered onnx_sha256 {v.tags.get('onnx_sha256', '?')[:12]}…; refusing it"
        )
