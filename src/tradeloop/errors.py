"""tradeloop's exception hierarchy. Library errors are translated at the boundary.

TradeloopError
 ├── BadInput            exit code 2: the user gave us something wrong
 │    ├── SpecError      tradeloop.yaml is invalid (carries file:line: path: message)
 │    └── DataError      market data refused by validation
 ├── NotFound            a version, run or object that does not exist
 ├── HashMismatch        a hash did not match (artifact or audit chain)
 └── RuntimeFailure      exit code 1: something broke while doing valid work
"""

from __future__ import annotations


class TradeloopError(Exception):
    exit_code = 1


class BadInput(TradeloopError):
    exit_code = 2


class SpecError(BadInput):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DataError(BadInput):
    def __init__(self, message: str, report: object | None = None) -> None:
        self.report = report
        super().__init__(message)


class NotFound(TradeloopError):
    exit_code = 2


class HashMismatch(TradeloopError):
    """Named apart from SQLAlchemy's `IntegrityError`, which the store catches."""

    exit_code = 1


class RuntimeFailure(TradeloopError):
    exit_code = 1
