"""The container image and the compose stack, checked without a Docker engine.

hadolint lints the Dockerfile (zero findings; the one ignore is justified inline), and the
compose file validates against the Compose specification's own JSON schema, then against what
the stack promises: every service it names, healthchecks gating `depends_on`, secrets only from
the uncommitted env file.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
BIN = Path(sys.executable).parent
SERVICES = {
    "postgres",
    "mlflow",
    "gateway-1",
    "gateway-2",
    "proxy",
    "controllers",
    "train",
    "prometheus",
    "alertmanager",
    "grafana",
}


def test_hadolint_is_clean() -> None:
    r = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    text = (ROOT / "Dockerfile").read_text()
    for ignore in re.finditer(r"# hadolint ignore=(\S+)", text):
        lines = text[: ignore.start()].splitlines()
        comment = []
        while lines and lines[-1].startswith("#"):
            comment.append(lines.pop())
        assert ignore.group(1) in " ".join(comment), (
            f"{ignore.group(1)} is ignored without a reason above it"
        )


def test_dockerfile_shape() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert stages[-2:] == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert "uv sync --frozen" in text.split("AS runtime", 1)[0]
    assert not re.search(r"\b(gcc|g\+\+|build-essential|uv)\b", runtime.replace("/app/.venv", ""))
    assert re.search(r"^USER 10001", runtime, re.M)
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "org.opencontainers.image.revision" in runtime
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[1] == "**" and "!src/" in ignore and "!uv.lock" in ignore


def test_compose_validates_against_the_compose_spec() -> None:
    r = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_stack(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, svc in services.items():
        if name != "train":  # a one-shot job has nothing to probe
            assert "healthcheck" in svc, f"{name} has no healthcheck"
        for dep, cond in svc.get("depends_on", {}).items():
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}"
            assert "healthcheck" in services[dep], f"{name} waits on {dep}, which has none"
    assert "--serve-artifacts" in services["mlflow"]["command"]
    assert any("postgresql" in a for a in services["mlflow"]["command"])
    upstream = (COMPOSE.parent / "nginx.conf").read_text()
    assert "gateway-1:8080" in upstream and "gateway-2:8080" in upstream
    assert services["controllers"]["command"][:2] == ["controller", "run"]
    prom = yaml.safe_load((COMPOSE.parent / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/prometheus/rules.yml"]
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    assert "../prometheus/rules.yml" in mounts and "../grafana/dashboards" in mounts


def test_tradeloop_containers_are_locked_down(compose: dict) -> None:
    for name in ("mlflow", "gateway-1", "gateway-2", "controllers", "train"):
        svc = compose["services"][name]
        assert svc["read_only"] is True and svc["user"] == "10001:10001", name
        assert svc["cap_drop"] == ["ALL"] and "no-new-privileges:true" in svc["security_opt"]


def test_secrets_only_from_the_uncommitted_env_file() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    example = (COMPOSE.parent / ".env.example").read_text()
    assert all(re.search(rf"^{v}=", example, re.M) for v in required)
    assert ".env" in (COMPOSE.parent / ".gitignore").read_text().split()
    r = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/compose/.env"], cwd=ROOT, capture_output=True
    )
    assert r.returncode == 0, "deploy/compose/.env must be ignored by git"
    assert not re.search(r"PASSWORD:\s+[^$\s]", text), "a literal password in compose.yaml"
