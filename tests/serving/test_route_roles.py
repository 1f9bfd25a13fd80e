"""Every route in the generated OpenAPI document, walked with each role and with no token.

With tokens required, routes without `security` in the document are open; secured ones need
their role: predictions `predictor`, `POST /v1/bars` `serving.bars_role` (here `feeder`), the
admin reload and `POST /v1/retrain` `operator`. A version-pinned route reaches only the live champion with a
predictor token; the shadow challenger needs operator, as the variant header does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import httpx
import pytest

from tradeloop.security.tokens import ROLES, create_token, role_allows
from tradeloop.spec import ServingSpec, Spec
from tradeloop.store import Store

CALLERS: tuple[str | None, ...] = (None, *ROLES)
APPS: dict[str, Any] = {}
NEEDS = {
    "post_bars": "feeder",
    "admin_reload": "operator",
    "retrain": "operator",
}  # secured, default: predictor


@pytest.fixture
def gateway(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], store: Store
) -> Iterator[tuple[str, dict[str, str]]]:
    deployer(("champion", "1", "live", 100), ("challenger", "2", "shadow", 0))
    serving = ServingSpec(require_token=True, bars_role="feeder")
    app = make_app(serving=serving, features=Spec(name="t").features)
    url = live(app).url
    APPS[url] = app
    yield url, {role: create_token(store, role, role)[0] for role in ROLES}


def expanded(path: str, op: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Concrete paths for a template, each with the version it pins (None: none)."""
    values = {"name": ["demo"], "symbol": ["AAA"], "version": ["1", "2"]}
    for p in op.get("parameters", []):
        if p["in"] == "path" and "enum" in p["schema"]:
            values[p["name"]] = list(p["schema"]["enum"])
    out: list[tuple[str, str | None]] = [(path, None)]
    for name in re.findall(r"{(\w+)}", path):
        out = [
            (p.replace("{" + name + "}", v), v if name == "version" else pin)
            for p, pin in out
            for v in values[name]
        ]
    return out


def needed(op: dict[str, Any], pinned: str | None) -> str | None:
    if not op.get("security"):
        return None
    if pinned == "2":  # the shadow challenger
        return "operator"
    return NEEDS.get(op["operationId"], "predictor")


@pytest.mark.slow
def test_every_route_with_every_role(gateway: tuple[str, dict[str, str]]) -> None:
    url, tokens = gateway
    doc = httpx.get(url + "/openapi.json").json()
    checked, wrong = 0, []
    for template, ops in doc["paths"].items():
        assert template.startswith("/")
        for method, op in ops.items():
            for path, pinned in expanded(template, op):
                need = needed(op, pinned)
                for caller in CALLERS:
                    headers = {"authorization": f"Bearer {tokens[caller]}"} if caller else {}
                    r = httpx.request(method.upper(), url + path, json={}, headers=headers)
                    if need is None:
                        expected = "open"
                        ok = r.status_code not in (401, 403) and r.status_code < 500
                    elif caller is None:
                        expected, ok = "401", r.status_code == 401
                    elif not role_allows(caller, need):
                        expected, ok = "403", r.status_code == 403
                    else:
                        expected = "allowed"
                        ok = r.status_code not in (401, 403) and r.status_code < 500
                    checked += 1
                    if not ok:
                        wrong.append(
                            f"{method.upper()} {path} as {caller}: {r.status_code}, "
                            f"expected {expected} ({r.text[:120]})"
                        )
    assert not wrong, "\n".join(wrong)
    assert checked >= 20 * len(CALLERS)


def test_a_predictor_cannot_reach_the_shadow_version_by_its_route(
    gateway: tuple[str, dict[str, str]],
) -> None:
    url, tokens = gateway
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [0.1] * 3}]}
    pred = {"authorization": f"Bearer {tokens['predictor']}"}
    r = httpx.post(url + "/v2/models/demo/versions/2/infer", json=body, headers=pred)
    assert r.status_code == 403 and "shadow challenger" in r.json()["error"]
    r = httpx.post(url + "/v2/models/demo/versions/1/infer", json=body, headers=pred)
    assert r.status_code == 200 and r.json()["model_version"] == "1"
    op = {"authorization": f"Bearer {tokens['operator']}"}
    r = httpx.post(url + "/v2/models/demo/versions/2/infer", json=body, headers=op)
    assert r.status_code == 200 and r.json()["model_version"] == "2"
    # an answer from outside the traffic split is logged as forced, not as live traffic
    gw = APPS[url].state.gateway
    assert gw.shadow.join(10) and gw.predlog.flush(10)
    glob = gw.predlog.dir / "**" / "*.parquet"
    rows = duckdb.sql(
        f"select version, variant, mode from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()
    assert sorted(set(rows)) == [
        ("1", "champion", "forced"),  # pinned by version: outside the split as well
        ("2", "challenger", "forced"),
        ("2", "challenger", "shadow"),  # the shadow still scores the pinned champion's request
    ]


@pytest.mark.parametrize(
    ("rows", "allowed", "refused"),
    [
        ((("champion", "1", "live", 90), ("challenger", "2", "live", 10)), "1", "2"),  # canary
        ((("champion", "1", "shadow", 0), ("challenger", "2", "live", 100)), "2", "1"),  # switched
    ],
)
def test_a_predictor_may_pin_only_the_main_live_version(
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    store: Store,
    rows: tuple[tuple[str, str, str, int], ...],
    allowed: str,
    refused: str,
) -> None:
    deployer(*rows)
    url = live(make_app(serving=ServingSpec(require_token=True))).url
    pred = {"authorization": f"Bearer {create_token(store, 'p', 'predictor')[0]}"}
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [0.1] * 3}]}
    r = httpx.post(f"{url}/v2/models/demo/versions/{allowed}/infer", json=body, headers=pred)
    assert r.status_code == 200 and r.json()["model_version"] == allowed
    r = httpx.post(f"{url}/v2/models/demo/versions/{refused}/infer", json=body, headers=pred)
    assert r.status_code == 403 and "needs an operator token" in r.json()["error"]
