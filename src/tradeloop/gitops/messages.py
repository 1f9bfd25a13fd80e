"""The commit messages and branch names of promotions and rollbacks.

A message says what and why in words, then ends with `Tradeloop-*` trailers a machine reads
back (`desired`, `proposals`); a proposal branch is named after its target, so a second
proposal for the same version is the same branch.
"""

from __future__ import annotations

from collections.abc import Mapping

from tradeloop.errors import BadInput
from tradeloop.gitops.desired import NAME_PATTERN

PROPOSAL_PREFIX = "tradeloop/promote-"

__all__ = [
    "PROPOSAL_PREFIX",
    "check_name",
    "one_line",
    "promotion_message",
    "proposal_branch",
    "rollback_message",
]


def proposal_branch(model: str, version: str) -> str:
    """One branch per target: its name is the identity that prevents a second proposal."""
    return f"{PROPOSAL_PREFIX}{model}-v{version}"


def check_name(what: str, value: str) -> str:
    """`value` if it is a valid model or version name (it goes into branch names), else
    BadInput."""
    value = str(value)
    if not NAME_PATTERN.match(value):
        raise BadInput(f"{what} {value!r} is not a valid name (letters, digits, '.', '_', '-')")
    return value


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message(
    subject: str, lines: list[str], details: Mapping[str, str] | None, trailers: dict[str, str]
) -> str:
    body = [line for line in lines if line]
    body += [f"{k}: {one_line(v)}" for k, v in (details or {}).items()]
    trailer_text = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    parts = [subject, "\n".join(body), trailer_text]
    return "\n\n".join(p for p in parts if p) + "\n"


def promotion_message(
    model: str,
    version: str,
    previous: str | None,
    reason: str,
    details: Mapping[str, str] | None = None,
) -> str:
    """`promote demo v3 to production`, why, and trailers a machine can read back."""
    trailers = {"Tradeloop-Model": model, "Tradeloop-Version": version}
    if previous is not None:
        trailers["Tradeloop-Previous"] = previous
    trailers["Tradeloop-Action"] = "promote"
    return _message(
        f"promote {model} v{version} to production",
        [f"reason: {one_line(reason)}", f"previous: v{previous}" if previous else ""],
        details,
        trailers,
    )


def rollback_message(
    model: str,
    rejected: str,
    restore: str | None,
    reason: str,
    details: Mapping[str, str] | None = None,
) -> str:
    to = f"v{restore}" if restore is not None else "no model"
    trailers = {
        "Tradeloop-Model": model,
        "Tradeloop-Version": restore if restore is not None else "none",
        "Tradeloop-Rejected": rejected,
        "Tradeloop-Action": "rollback",
    }
    return _message(
        f"rollback {model} v{rejected} to {to} in production",
        [f"reason: {one_line(reason)}", f"rejected: v{rejected} (never rolled out again)"],
        details,
        trailers,
    )
