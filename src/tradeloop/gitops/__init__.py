"""GitOps: read the desired state at the tracked branch, write promotions/rollbacks as commits.

`git` is the one way to run the git CLI (scrubbed environment, timeout, our errors); `repo`
reads and writes the user's repository safely with it, `commits` says what a commit is to us;
`desired` reads the spec and the production pin from a commit, `promotion` writes changes back
(directly, or one proposal branch per target; rollbacks always directly) with the messages and
branch names of `messages`.
"""

from tradeloop.gitops.commits import Commit, Identity
from tradeloop.gitops.desired import DesiredState, Pin, PinError, read_desired
from tradeloop.gitops.promotion import (
    GitChange,
    Proposal,
    RejectedVersion,
    close_proposal,
    proposals,
    propose_or_apply,
    record_rollback,
)
from tradeloop.gitops.repo import ConcurrentUpdate, GitRepo, UncommittedEdits

__all__ = [
    "Commit",
    "ConcurrentUpdate",
    "DesiredState",
    "GitChange",
    "GitRepo",
    "Identity",
    "Pin",
    "PinError",
    "Proposal",
    "RejectedVersion",
    "UncommittedEdits",
    "close_proposal",
    "proposals",
    "propose_or_apply",
    "read_desired",
    "record_rollback",
]
