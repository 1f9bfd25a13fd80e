"""Which version each alias names, read without importing MLflow.

`tradeloop status` must start in well under a second, and importing MLflow alone takes about
two. The answer it needs is small, so it is read directly:

- `http(s)://` tracking servers: MLflow's REST API (`registered-models/alias`), with httpx and
  the same `MLFLOW_TRACKING_*` credentials MLflow's client honours;
- SQL tracking stores (`sqlite:`, `postgresql:`, `mysql:`, `mssql:`): MLflow's
  `registered_model_aliases`, `model_versions` and `model_version_tags` tables with SQLAlchemy
  core (their shape has been stable from MLflow 2.3 to 3.x; newer stores add a `workspace`
  column, read here as MLflow's `default` workspace);
- anything else (`file:`, `databricks`): MLflow's own client, slow but right.

As with `Registry.by_alias`, an alias counts only when it names a *complete* version (one that
carries `tradeloop.complete=true`); otherwise it reads as None. tests/registry/test_alias_reader.py
holds this to MlflowClient's answers on real stores, so it cannot drift silently.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeloop.errors import RuntimeFailure
from tradeloop.registry.mlflow_registry import COMPLETE_TAG  # imports MLflow only when used

DELETED_STAGE = "Deleted_Internal"  # MLflow's soft-deleted versions keep their rows
DEFAULT_WORKSPACE = "default"
SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def alias_versions(tracking_uri: str, name: str, aliases: Sequence[str]) -> dict[str, str | None]:
    """For each alias of registered model `name`, the complete version it names, else None."""
    scheme = tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in ("http", "https"):
        return _from_rest(tracking_uri, name, aliases)
    if scheme in SQL_SCHEMES:
        return _from_sql(tracking_uri, name, aliases)
    return _from_client(tracking_uri, name, aliases)


# ---------------------------------------------------------------------------------- REST


def _rest_auth() -> tuple[dict[str, str], Any, bool | str]:
    headers: dict[str, str] = {}
    auth: Any = None
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        auth = (user, password)
    verify: bool | str = True
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        verify = False
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        verify = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    return headers, auth, verify


def _absent(resp: Any) -> bool:
    """MLflow's answer for a model or alias that does not exist (404, or 400 for an alias)."""
    if resp.status_code not in (400, 404):
        return False
    try:
        code = resp.json().get("error_code")
    except ValueError:
        return False
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _from_rest(uri: str, name: str, aliases: Sequence[str]) -> dict[str, str | None]:
    import httpx

    headers, auth, verify = _rest_auth()
    url = uri.rstrip("/") + "/api/2.0/mlflow/registered-models/alias"
    found: dict[str, str | None] = {}
    try:
        with httpx.Client(headers=headers, auth=auth, verify=verify, timeout=10.0) as http:
            for alias in aliases:
                resp = http.get(url, params={"name": name, "alias": alias})
                if _absent(resp):
                    found[alias] = None
                    continue
                resp.raise_for_status()
                mv = resp.json().get("model_version") or {}
                tags = {t.get("key"): t.get("value") for t in mv.get("tags") or []}
                complete = tags.get(COMPLETE_TAG) == "true"
                found[alias] = str(mv["version"]) if complete and "version" in mv else None
    except httpx.HTTPError as exc:
        raise RuntimeFailure(f"cannot read aliases of {name!r} from {uri}: {exc}") from exc
    return found


# ----------------------------------------------------------------------------------- SQL


_QUERY = (
    "SELECT a.alias, a.version FROM registered_model_aliases a"
    " JOIN model_versions v ON v.name = a.name AND v.version = a.version"
    " JOIN model_version_tags t ON t.name = a.name AND t.version = a.version"
    " WHERE a.name = ? AND v.current_stage <> ? AND t.key = ? AND t.value = 'true'"
)
_SAME_WORKSPACE = " AND v.workspace = a.workspace AND t.workspace = a.workspace AND a.workspace = ?"


def _from_sql(uri: str, name: str, aliases: Sequence[str]) -> dict[str, str | None]:
    """SQLite and PostgreSQL through their DB-API drivers (`store.dbapi`: no SQLAlchemy
    import, 0.15 s of a short command's start); other SQL schemes through SQLAlchemy."""
    from tradeloop.store.dbapi import ReadOnlyDB, Unsupported

    found: dict[str, str | None] = dict.fromkeys(aliases)
    try:
        db = ReadOnlyDB.open(uri)
    except Unsupported:
        return _from_sqlalchemy(uri, name, aliases)
    if db is None:
        return found  # nothing was ever tracked; don't create an empty store
    try:
        with db:
            if not db.has_table("registered_model_aliases"):
                return found
            workspaced = "workspace" in db.columns("model_versions")
            params: tuple[str, ...] = (name, DELETED_STAGE, COMPLETE_TAG)
            if workspaced:
                params += (DEFAULT_WORKSPACE,)
            rows = db.rows(_QUERY + (_SAME_WORKSPACE if workspaced else ""), params)
    except Exception as exc:  # sqlite3.Error or psycopg.Error: the DB-API's own hierarchy
        raise RuntimeFailure(f"cannot read aliases of {name!r} from {uri}: {exc}") from exc
    for r in rows:
        if r["alias"] in found:
            found[r["alias"]] = str(r["version"])
    return found


def _from_sqlalchemy(uri: str, name: str, aliases: Sequence[str]) -> dict[str, str | None]:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, NoSuchModuleError

    from tradeloop.store.engine import normalize_url

    found: dict[str, str | None] = dict.fromkeys(aliases)
    url = make_url(normalize_url(uri))
    db_file = url.database if url.get_backend_name() == "sqlite" else None
    if db_file and db_file != ":memory:" and not Path(db_file).exists():
        return found  # nothing was ever tracked; don't create an empty store
    try:
        engine = create_engine(url)
    except NoSuchModuleError:  # a database driver we don't ship: MLflow may have it
        return _from_client(uri, name, aliases)
    try:
        insp = inspect(engine)
        if not insp.has_table("registered_model_aliases"):
            return found
        workspaced = any(c["name"] == "workspace" for c in insp.get_columns("model_versions"))
        same_ws = (
            " AND v.workspace = a.workspace AND t.workspace = a.workspace"
            " AND a.workspace = :workspace"
            if workspaced
            else ""
        )
        query = text(
            "SELECT a.alias, a.version FROM registered_model_aliases a"
            " JOIN model_versions v ON v.name = a.name AND v.version = a.version"
            " JOIN model_version_tags t ON t.name = a.name AND t.version = a.version"
            " WHERE a.name = :name AND v.current_stage <> :deleted"
            " AND t.key = :tag AND t.value = 'true'" + same_ws
        )
        params = {"name": name, "deleted": DELETED_STAGE, "tag": COMPLETE_TAG}
        if workspaced:
            params["workspace"] = DEFAULT_WORKSPACE
        with engine.connect() as conn:
            rows = conn.execute(query, params).all()
    except DBAPIError as exc:
        raise RuntimeFailure(f"cannot read aliases of {name!r} from {uri}: {exc.orig}") from exc
    finally:
        engine.dispose()
    for alias, version in rows:
        if alias in found:
            found[alias] = str(version)
    return found


# ------------------------------------------------------------------------------ fallback


def _from_client(uri: str, name: str, aliases: Sequence[str]) -> dict[str, str | None]:
    from tradeloop.registry.mlflow_registry import Registry

    reg = Registry.open(uri)
    found: dict[str, str | None] = {}
    for alias in aliases:
        v = reg.by_alias(name, alias)
        found[alias] = v.version if v else None
    return found
