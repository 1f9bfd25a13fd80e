"""Secrets by reference: a spec value `${NAME}` reads environment variable NAME, and
`file:/path` reads that file (stripped), at the moment it is used, never at load time.

The spec lives in git, so a webhook URL (which usually embeds its token) written there
literally is a leaked credential. `validate` warns about every such value (`literal_secrets`),
and the runtime resolves references only where the value is used (`resolve_secret`), so a
missing variable fails the delivery that needs it, naming the variable, not the whole spec.
The database URL and its password come from `TRADELOOP_DB_URL`, never from the spec.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tradeloop.errors import BadInput

_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_FILE = "file:"


def is_reference(value: str) -> bool:
    return bool(_ENV.match(value.strip())) or value.strip().startswith(_FILE)


def resolve_secret(value: str, what: str) -> str:
    """The value a reference names (a literal is returned as is); BadInput naming the gap."""
    v = value.strip()
    m = _ENV.match(v)
    if m:
        got = os.environ.get(m.group(1))
        if not got:
            raise BadInput(f"{what}: environment variable {m.group(1)} is not set")
        return got
    if v.startswith(_FILE):
        path = Path(v[len(_FILE) :]).expanduser()
        try:
            got = path.read_text().strip()
        except OSError as exc:
            raise BadInput(f"{what}: cannot read secret file {path}: {exc.strerror}") from exc
        if not got:
            raise BadInput(f"{what}: secret file {path} is empty")
        return got
    return value


def literal_secrets(webhook_urls: dict[str, str]) -> list[str]:
    """Warnings for webhook URLs written literally in the spec (name → url)."""
    return [
        f"monitoring.webhooks.{name}.url is written literally; webhook URLs usually carry a "
        "token, so put it in an environment variable or a file and write '${NAME}' or "
        "'file:/path' instead"
        for name, url in sorted(webhook_urls.items())
        if not is_reference(url)
    ]
