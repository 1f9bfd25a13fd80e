"""Each overlay renders with `kubectl kustomize`, every object validates against the
Kubernetes schemas, and the policy in `k8s_policy` holds; each mutation below removes one
property from the rendered objects and must be caught, so the policy cannot quietly weaken.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.k8s_policy import IDENTITY, containers, pod_spec, violations

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CLOUDS = ("aws", "gcp", "azure")
K8S_VERSION = "1.33.0"  # a current version kubernetes-validate ships the schemas of
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}  # no upstream schema to check against
Obj = dict[str, Any]

# In CI these must run (the image has kubectl); elsewhere they skip with the reason.
pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None and not os.environ.get("CI"), reason="kubectl not installed"
)


def render(target: str | Path) -> list[Obj]:
    where = target if isinstance(target, Path) else K8S / target
    r = subprocess.run(
        ["kubectl", "kustomize", str(where)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


@pytest.fixture(scope="module", params=CLOUDS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    return request.param, render(f"overlays/{request.param}")


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}"
    return hits[0]


def container(objs: list[Obj], kind: str, name: str, cname: str) -> Obj:
    return next(c for c, _ in containers(find(objs, kind, name)) if c["name"] == cname)


def test_every_object_validates(overlay: tuple[str, list[Obj]]) -> None:
    _, objs = overlay
    assert len(objs) > 20
    for o in objs:
        if (o["apiVersion"], o["kind"]) in CRDS:
            continue
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)


def test_the_base_renders_without_identity() -> None:
    base = render("base")
    assert not any(IDENTITY[c] in yaml.safe_dump_all(base) for c in CLOUDS)
    assert violations(base, "aws")  # no identity: the base alone is not deployable as is
    cron = find(base, "CronJob", "tradeloop-train")
    assert cron["spec"]["suspend"] is True  # a template until a schedule is wanted


def test_scheduled_training_component(tmp_path: Path) -> None:
    """An overlay plus the component, as a user's own kustomization would combine them."""

    def rel(p: Path) -> str:
        return os.path.relpath(p, tmp_path)  # kustomize refuses absolute roots

    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [rel(K8S / "overlays" / "gcp")],
                "components": [rel(K8S / "components" / "scheduled-training")],
            }
        )
    )
    objs = render(tmp_path)
    cron = find(objs, "CronJob", "tradeloop-train")
    assert cron["spec"]["suspend"] is False and cron["spec"]["schedule"] == "0 2 * * *"
    assert violations(objs, "gcp") == []


def test_the_policy_holds(overlay: tuple[str, list[Obj]]) -> None:
    cloud, objs = overlay
    assert violations(objs, cloud) == []


def test_the_expected_objects_are_there(overlay: tuple[str, list[Obj]]) -> None:
    cloud, objs = overlay
    for role in ("trainer", "deployer", "monitor"):
        d = find(objs, "Deployment", f"tradeloop-{role}")
        assert (
            d["spec"]["replicas"] == 2 and pod_spec(d)["serviceAccountName"] == f"tradeloop-{role}"
        )
        assert [c["name"] for c, _ in containers(d)] == [role, "git-sync"]
    assert find(objs, "Role", "tradeloop-trainer")["rules"][1]["resources"] == ["jobs"]
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert (
        find(objs, "ServiceAccount", "tradeloop-gateway")["automountServiceAccountToken"] is False
    )
    cron = find(objs, "CronJob", "tradeloop-train")
    job_pod = pod_spec(cron)
    assert (
        job_pod["tolerations"]
        and job_pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    )  # preferred: spot first, on-demand when there is none
    dest = find(objs, "ConfigMap", "tradeloop-mlflow")["data"]["MLFLOW_ARTIFACTS_DESTINATION"]
    assert dest.startswith({"aws": "s3://", "gcp": "gs://", "azure": "wasbs://"}[cloud])
    if cloud == "aws":
        ing = find(objs, "Ingress", "tradeloop-gateway")
        assert ing["spec"]["ingressClassName"] == "alb"
        assert ing["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    gw = find(objs, "Deployment", "tradeloop-gateway")
    assert gw["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def _gw(objs: list[Obj]) -> Obj:
    return container(objs, "Deployment", "tradeloop-gateway", "gateway")


def _sc(objs: list[Obj], key: str, value: object = None) -> None:
    sc = container(objs, "Deployment", "tradeloop-trainer", "git-sync")["securityContext"]
    if value is None:
        sc.pop(key)
    else:
        sc[key] = value


def _drop_deny(objs: list[Obj]) -> None:
    objs.remove(find(objs, "NetworkPolicy", "default-deny"))


def _drop_identity(objs: list[Obj], cloud: str) -> None:
    find(objs, "ServiceAccount", "tradeloop-deployer")["metadata"]["annotations"].pop(
        IDENTITY[cloud]
    )


MUTATIONS: dict[str, Callable[[list[Obj], str], None]] = {
    "runAsNonRoot": lambda o, c: _gw(o)["securityContext"].pop("runAsNonRoot"),
    "pod runAsNonRoot": lambda o, c: pod_spec(find(o, "CronJob", "tradeloop-train"))[
        "securityContext"
    ].pop("runAsNonRoot"),
    "readOnlyRootFilesystem": lambda o, c: _sc(o, "readOnlyRootFilesystem", False),
    "allowPrivilegeEscalation": lambda o, c: _sc(o, "allowPrivilegeEscalation"),
    "capabilities drop ALL": lambda o, c: _sc(o, "capabilities", {"drop": ["NET_RAW"]}),
    "seccomp": lambda o, c: _sc(o, "seccompProfile"),
    "limits": lambda o, c: container(o, "CronJob", "tradeloop-train", "train")["resources"].pop(
        "limits"
    ),
    "requests": lambda o, c: container(o, "Deployment", "tradeloop-mlflow", "mlflow")[
        "resources"
    ].pop("requests"),
    "readiness": lambda o, c: _gw(o).pop("readinessProbe"),
    "liveness": lambda o, c: container(o, "Deployment", "tradeloop-deployer", "deployer").pop(
        "livenessProbe"
    ),
    "default-deny": lambda o, c: _drop_deny(o),
    "PSS label": lambda o, c: find(o, "Namespace", "tradeloop")["metadata"]["labels"].pop(
        "pod-security.kubernetes.io/enforce"
    ),
    "identity annotation": _drop_identity,
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_dropping_any_property_fails_the_policy(
    mutation: str, overlay: tuple[str, list[Obj]]
) -> None:
    cloud, objs = overlay
    broken = copy.deepcopy(objs)
    MUTATIONS[mutation](broken, cloud)
    assert violations(broken, cloud), f"dropping {mutation} went unnoticed"
