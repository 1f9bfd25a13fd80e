"""Every command the image, compose file and manifests run exists in `tradeloop --help`, with
the options they pass: a renamed command or flag fails here, not in a cluster."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy.k8s_policy import containers

ROOT = Path(__file__).resolve().parents[2]
TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


def _commands() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert cmd
    found.add(tuple(yaml.safe_load(cmd.group(1))))
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    for svc in compose["services"].values():
        if svc.get("image", "").startswith("${TRADELOOP_IMAGE") and "entrypoint" not in svc:
            found.add(tuple(svc["command"]))
    for path in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj["kind"] in ("Deployment", "CronJob"):
                for c, _ in containers(obj):
                    if c["image"] == "tradeloop" and "command" not in c:
                        found.add(tuple(c["args"]))
    return found


def test_role_commands_exist() -> None:
    commands = _commands()
    assert len(commands) >= 5
    for argv in commands:
        words = [a for a in argv if not a.startswith("-")]
        # Subcommand words come first; the rest are option values and positional names.
        sub = words[:2] if words[0] in ("controller", "job", "jobs") else words[:1]
        r = subprocess.run([TRADELOOP, *sub, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{argv}: {r.stderr}"
        for flag in (a for a in argv if a.startswith("--")):
            assert flag.split("=")[0] in r.stdout, f"{' '.join(sub)} has no {flag}"
