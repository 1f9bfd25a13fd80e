"""Webhook URLs by reference: `${ENV_VAR}` or a file path, so secrets stay out of git.

A Slack or PagerDuty webhook URL is a credential. The spec names where it is (an environment
variable, or a file beside the spec or anywhere else, e.g. a mounted secret) and the monitor
resolves it when it builds its notifier. A literal URL still works (a local receiver in a
test), but `tradeloop validate` warns when a git-tracked spec holds one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from tradeloop.errors import BadInput
from tradeloop.spec import WebhookRoute

__all__ = ["is_literal_url", "literal_url_routes", "resolve_reference", "resolve_routes"]

_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_SCHEMES = ("http://", "https://")


def is_literal_url(value: str) -> bool:
    return value.strip().lower().startswith(_SCHEMES)


def resolve_reference(
    value: str, base: Path, *, what: str = "url", env: Mapping[str, str] | None = None
) -> str:
    """The URL `value` refers to: an environment variable, a file's content, or itself."""
    env = os.environ if env is None else env
    value = value.strip()
    m = _ENV.match(value)
    if m:
        got = env.get(m.group(1), "").strip()
        if not got:
            raise BadInput(f"{what}: environment variable {m.group(1)} is not set (or empty)")
        resolved, source = got, f"${{{m.group(1)}}}"
    elif is_literal_url(value):
        return value
    else:
        path = Path(value.removeprefix("file:")).expanduser()  # `file:/run/secrets/hook` too
        path = path if path.is_absolute() else base / path
        try:
            resolved, source = path.read_text().strip(), str(path)
        except OSError as exc:
            raise BadInput(
                f"{what}: {value!r} is neither a URL, ${{ENV_VAR}} nor a readable file: {exc}"
            ) from exc
    if not is_literal_url(resolved):
        raise BadInput(f"{what}: {source} does not hold an http(s) URL")
    return resolved


def resolve_routes(
    webhooks: Mapping[str, WebhookRoute], base: Path, env: Mapping[str, str] | None = None
) -> dict[str, WebhookRoute]:
    """The routes with their URLs resolved (BadInput naming the route that cannot be)."""
    return {
        name: r.model_copy(
            update={"url": resolve_reference(r.url, base, what=f"webhooks.{name}.url", env=env)}
        )
        for name, r in webhooks.items()
    }


def literal_url_routes(webhooks: Mapping[str, WebhookRoute]) -> list[str]:
    """Routes whose URL is written literally in the spec (what validate warns about)."""
    return sorted(name for name, r in webhooks.items() if is_literal_url(r.url))
