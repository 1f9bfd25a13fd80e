"""The security and operability policy the rendered Kubernetes manifests must meet.

`violations` returns what is wrong, one message per breach, so the test can show both that
the shipped overlays pass and that removing any single property is caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]
WORKLOADS = {"Deployment", "CronJob", "Job"}
IDENTITY = {
    "aws": "eks.amazonaws.com/role-arn",
    "gcp": "iam.gke.io/gcp-service-account",
    "azure": "azure.workload.identity/client-id",
}
PSS = ("enforce", "audit", "warn")


def pod_spec(obj: Obj) -> Obj:
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def containers(obj: Obj) -> Iterator[tuple[Obj, bool]]:
    """Each container, and whether it is an init container."""
    spec = pod_spec(obj)
    for c in spec.get("initContainers", []):
        yield c, True
    for c in spec["containers"]:
        yield c, False


def _container(obj: Obj, c: Obj, init: bool) -> list[str]:
    where = f"{obj['kind']}/{obj['metadata']['name']} container {c['name']}"
    sc = c.get("securityContext", {})
    out = []
    if sc.get("runAsNonRoot") is not True:
        out.append(f"{where}: runAsNonRoot is not true")
    if sc.get("readOnlyRootFilesystem") is not True:
        out.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        out.append(f"{where}: privileged")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        out.append(f"{where}: capabilities do not drop ALL")
    if sc.get("capabilities", {}).get("add"):
        out.append(f"{where}: adds capabilities")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        out.append(f"{where}: seccomp profile is not RuntimeDefault")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in res.get(kind, {}):
                out.append(f"{where}: no {what} {kind[:-1]}")
    long_running = obj["kind"] == "Deployment" and not init
    if long_running and "livenessProbe" not in c:
        out.append(f"{where}: no livenessProbe")
    if long_running and c.get("ports") and "readinessProbe" not in c:
        out.append(f"{where}: serves a port without a readinessProbe")
    if c["name"] == "gateway":
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            out.append(f"{where}: readiness is not on /readyz")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            out.append(f"{where}: liveness is not on /healthz")
    for env in c.get("env", []):
        sensitive = any(w in env["name"].lower() for w in ("password", "secret", "db_url"))
        if sensitive and "value" in env:
            out.append(f"{where}: {env['name']} is a literal, not a Secret reference")
    return out


def violations(objs: list[Obj], cloud: str) -> list[str]:
    out: list[str] = []
    by_kind: dict[str, list[Obj]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    namespaces = by_kind.get("Namespace", [])
    if not namespaces:
        out.append("no Namespace")
    for ns in namespaces:
        labels = ns["metadata"].get("labels", {})
        for mode in PSS:
            if labels.get(f"pod-security.kubernetes.io/{mode}") != "restricted":
                out.append(f"namespace {ns['metadata']['name']}: PSS {mode} is not restricted")
    if by_kind.get("Secret"):
        out.append("a Secret is rendered: secrets must be referenced, never shipped")
    deny = [
        p
        for p in by_kind.get("NetworkPolicy", [])
        if p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not deny:
        out.append("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress)")
    for o in objs:
        if o["kind"] not in WORKLOADS:
            continue
        spec = pod_spec(o)
        name = f"{o['kind']}/{o['metadata']['name']}"
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            out.append(f"{name}: pod runAsNonRoot is not true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            out.append(f"{name}: pod seccomp profile is not RuntimeDefault")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            out.append(f"{name}: shares a host namespace")
        for c, init in containers(o):
            out.extend(_container(o, c, init))
    gateways = [
        d for d in by_kind.get("Deployment", []) if d["metadata"]["name"].endswith("-gateway")
    ]
    if not gateways or not pod_spec(gateways[0]).get("topologySpreadConstraints"):
        out.append("the gateway Deployment has no topology spread")
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor"):
        if not by_kind.get(kind):
            out.append(f"no {kind}")
    key = IDENTITY[cloud]
    for sa in by_kind.get("ServiceAccount", []):
        if not sa["metadata"].get("annotations", {}).get(key):
            out.append(f"ServiceAccount/{sa['metadata']['name']}: no {key} annotation")
    return out
