"""GitOps: read the desired state at the tracked branch, write promotions/rollbacks as commits.

`repo` runs the git CLI safely on the user's repository, `desired` reads the spec and the
production pin from a commit, `promotion` writes changes back (directly, or one proposal branch
per target; rollbacks always directly).
"""

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
from tradeloop.gitops.repo import Commit, ConcurrentUpdate, GitRepo, Identity, UncommittedEdits

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
