"""The Terraform modules, checked without providers (they cannot be downloaded here).

`terraform fmt -check`, a parse of every file with python-hcl2 and assertions that the
resources the overlays rely on are there and configured (encryption with a customer key,
versioning, private networking, one workload identity per ServiceAccount, spot training
capacity, a registry, log and metric export, the retraining event path), variables with
descriptions and validation, and checkov with no failed check (each skip says why).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TF = ROOT / "deploy" / "terraform"
CLOUDS = ("aws", "gcp", "azure")
ROLES = {"gateway", "trainer", "deployer", "monitor", "training-job", "mlflow"}
CHECKOV = "checkov==3.2.469"


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {_clean(k): _clean(x) for k, x in v.items() if k != "__is_block__"}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def module(cloud: str) -> dict[str, Any]:
    """{"resource": {type: {name: body}}, "variable": {...}, "output": {...}, "text": str}."""
    out: dict[str, Any] = {"resource": {}, "variable": {}, "output": {}, "text": ""}
    for path in sorted((TF / cloud).glob("*.tf")):
        out["text"] += path.read_text()
        with path.open() as f:
            doc = _clean(hcl2.load(f))
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                out["resource"].setdefault(rtype, {}).update(named)
        for kind in ("variable", "output"):
            for block in doc.get(kind, []):
                out[kind].update(block)
    return out


@pytest.fixture(scope="module", params=CLOUDS)
def tf(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, module(request.param)


def one(m: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = m["resource"].get(rtype)
    assert found, f"no {rtype}"
    return next(iter(found.values()))


@pytest.mark.skipif(
    shutil.which("terraform") is None and not os.environ.get("CI"), reason="terraform not installed"
)
def test_terraform_fmt() -> None:
    r = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_variables_are_described_and_validated(tf: tuple[str, dict[str, Any]]) -> None:
    _, m = tf
    assert m["variable"]
    for name, v in m["variable"].items():
        assert v.get("description"), f"variable {name} has no description"
        assert v.get("validation"), f"variable {name} has no validation"
    for name, o in m["output"].items():
        assert o.get("description"), f"output {name} has no description"
    outputs = set(m["output"])
    assert {"cluster_name", "artifact_destination", "image_repository"} <= outputs
    assert m["variable"]["retrain_token"]["sensitive"] is True


def test_aws_resources() -> None:
    m = module("aws")
    key = one(m, "aws_kms_key")
    assert key["enable_key_rotation"] is True
    sse = one(m, "aws_s3_bucket_server_side_encryption_configuration")
    rule = sse["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert rule["sse_algorithm"] == "aws:kms" and "aws_kms_key" in rule["kms_master_key_id"]
    assert one(m, "aws_s3_bucket_versioning")["versioning_configuration"][0]["status"] == "Enabled"
    assert one(m, "aws_s3_bucket_public_access_block")["restrict_public_buckets"] is True
    db = one(m, "aws_db_instance")
    assert db["publicly_accessible"] is False and db["storage_encrypted"] is True
    assert "aws_kms_key" in db["kms_key_id"]
    eks = one(m, "aws_eks_cluster")
    vpc = eks["vpc_config"][0]
    assert vpc["endpoint_public_access"] is False and vpc["endpoint_private_access"] is True
    assert eks["encryption_config"][0]["resources"] == ["secrets"]
    pools = m["resource"]["aws_eks_node_group"]
    assert pools["training"]["capacity_type"] == "SPOT" and pools["training"]["taint"]
    assert one(m, "aws_iam_openid_connect_provider")
    assert m["resource"]["aws_iam_role"]["workload"]["for_each"] == "${local.roles}"
    for role in ROLES:
        assert f'"{role}"' in m["text"].split("roles = toset(", 1)[1].split(")")[0]
    assert "system:serviceaccount:tradeloop:tradeloop-${each.key}" in m["text"]
    assert one(m, "aws_ecr_repository")["image_tag_mutability"] == "IMMUTABLE"
    assert one(m, "aws_eks_addon")["addon_name"] == "amazon-cloudwatch-observability"
    dest = one(m, "aws_cloudwatch_event_api_destination")
    assert (
        dest["http_method"] == "POST" and dest["invocation_endpoint"] == "${var.retrain_endpoint}"
    )
    target = one(m, "aws_cloudwatch_event_target")["input_transformer"][0]
    assert "<id>" in target["input_template"] and "reason" in target["input_template"]


def test_gcp_resources() -> None:
    m = module("gcp")
    assert one(m, "google_kms_crypto_key")["rotation_period"]
    bucket = one(m, "google_storage_bucket")
    assert bucket["versioning"][0]["enabled"] is True
    assert "google_kms_crypto_key" in bucket["encryption"][0]["default_kms_key_name"]
    assert bucket["public_access_prevention"] == "enforced"
    sql = one(m, "google_sql_database_instance")
    ip = sql["settings"][0]["ip_configuration"][0]
    assert ip["ipv4_enabled"] is False and ip["private_network"] == "${var.network}"
    assert "google_kms_crypto_key" in sql["encryption_key_name"]
    assert one(m, "google_service_networking_connection")
    gke = one(m, "google_container_cluster")
    private = gke["private_cluster_config"][0]
    assert private["enable_private_nodes"] is True and private["enable_private_endpoint"] is True
    assert gke["workload_identity_config"][0]["workload_pool"] == "${var.project_id}.svc.id.goog"
    assert gke["database_encryption"][0]["state"] == "ENCRYPTED"
    assert gke["monitoring_config"][0]["managed_prometheus"][0]["enabled"] is True
    assert m["resource"]["google_container_node_pool"]["training"]["node_config"][0]["spot"] is True
    wi = m["resource"]["google_service_account_iam_member"]["workload_identity"]
    assert wi["role"] == "roles/iam.workloadIdentityUser"
    assert "[tradeloop/tradeloop-${each.key}]" in wi["member"]
    assert one(m, "google_artifact_registry_repository")["kms_key_name"]
    assert one(m, "google_logging_project_sink")
    assert "google_kms_crypto_key" in one(m, "google_pubsub_topic")["kms_key_name"]
    flow = one(m, "google_workflows_workflow")["source_contents"]
    assert "${var.retrain_endpoint}" in flow and "messageId" in flow
    assert one(m, "google_eventarc_trigger")["destination"][0]["workflow"]


def test_azure_resources() -> None:
    m = module("azure")
    vault = one(m, "azurerm_key_vault")
    assert vault["purge_protection_enabled"] is True
    assert vault["public_network_access_enabled"] is False
    assert one(m, "azurerm_key_vault_key")["rotation_policy"]
    sa = one(m, "azurerm_storage_account")
    assert sa["blob_properties"][0]["versioning_enabled"] is True
    assert "azurerm_key_vault_key" in sa["customer_managed_key"][0]["key_vault_key_id"]
    assert sa["public_network_access_enabled"] is False and sa["shared_access_key_enabled"] is False
    pg = one(m, "azurerm_postgresql_flexible_server")
    assert pg["public_network_access_enabled"] is False and pg["delegated_subnet_id"]
    assert "azurerm_key_vault_key" in pg["customer_managed_key"][0]["key_vault_key_id"]
    aks = one(m, "azurerm_kubernetes_cluster")
    assert aks["private_cluster_enabled"] is True
    assert aks["oidc_issuer_enabled"] is True and aks["workload_identity_enabled"] is True
    assert aks["oms_agent"] and aks["network_profile"][0]["network_policy"] == "azure"
    spot = one(m, "azurerm_kubernetes_cluster_node_pool")
    assert spot["priority"] == "Spot"
    assert spot["node_taints"] == ["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
    fic = one(m, "azurerm_federated_identity_credential")
    assert fic["subject"] == "system:serviceaccount:tradeloop:tradeloop-${each.key}"
    acr = one(m, "azurerm_container_registry")
    assert acr["admin_enabled"] is False and acr["encryption"]
    assert one(m, "azurerm_monitor_diagnostic_setting")
    assert one(m, "azurerm_eventgrid_topic") and one(m, "azurerm_eventgrid_event_subscription")
    action = one(m, "azurerm_logic_app_action_http")
    assert action["method"] == "POST" and action["uri"] == "${var.retrain_endpoint}"
    assert "triggerBody()?['id']" in action["body"]


def test_every_checkov_skip_says_why() -> None:
    for path in TF.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                m = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_\d+):(.{15,})", line)
                assert m, f"{path.name}: a skip without a reason: {line.strip()}"


@pytest.mark.slow
@pytest.mark.parametrize("cloud", CLOUDS)
def test_checkov_has_no_failed_check(cloud: str) -> None:
    uv = ["uv"] if shutil.which("uv") else ["python3", "-m", "uv"]
    r = subprocess.run(
        [
            *uv,
            "tool",
            "run",
            "--from",
            CHECKOV,
            "checkov",
            "-d",
            str(TF / cloud),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+)", r.stdout)
    assert summary, r.stdout[-3000:] + r.stderr[-3000:]
    assert int(summary.group(1)) > 50
    assert summary.group(2) == "0", r.stdout[-6000:]
    assert r.returncode == 0
