"""What a commit is to tradeloop: who makes it, how it reads back, how its message is shaped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Commit", "Identity", "commit_message", "commit_subject", "date_env"]


@dataclass(frozen=True)
class Identity:
    """Author and committer of every commit tradeloop makes; works with no git identity set."""

    name: str = "tradeloop"
    email: str = "tradeloop@localhost"

    def config_args(self) -> list[str]:
        # author.* and committer.* (git >= 2.22) override user.*: set all so ours always wins.
        args: list[str] = []
        for key in ("user", "author", "committer"):
            args += ["-c", f"{key}.name={self.name}", "-c", f"{key}.email={self.email}"]
        return args


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    trailers: dict[str, str]  # `Key: value` lines of the message's last paragraph
    time: datetime  # committer time, UTC
    author: str

    def to_dict(self) -> dict[str, object]:
        return {
            "sha": self.sha,
            "subject": self.subject,
            "trailers": dict(self.trailers),
            "time": self.time.isoformat(),
            "author": self.author,
        }


def date_env(when: datetime | None) -> dict[str, str]:
    if when is None:
        return {}
    if when.tzinfo is None:
        raise ValueError("commit time must be timezone-aware")
    stamp = f"@{int(when.timestamp())} +0000"
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


def commit_message(message: str) -> str:
    text = message.strip("\n")
    if not text.strip():
        raise ValueError("a commit needs a message that says what and why")
    return text + "\n"


def commit_subject(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "commit"
