"""Two pieces of numpy work at once, for the sorts that dominate a backtest's metrics.

numpy's sorts release the GIL, so the IC's rankings can run beside the rest of the metrics on
a second core. Errors from the other thread are re-raised in the caller's, as if sequential.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """`fn()` started in a thread now; `result()` waits for it (and re-raises its error)."""

    def __init__(self, fn: Callable[[], T], name: str = "tradeloop-metrics") -> None:
        self._fn = fn
        self._value: list[T] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value.append(self._fn())
        except BaseException as exc:  # handed to the caller in result()
            self._error.append(exc)

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> T:
        self.wait()
        if self._error:
            raise self._error[0]
        return self._value[0]


def pair(first: Callable[[], T], second: Callable[[], T], parallel: bool = True) -> tuple[T, T]:
    """(first(), second()), the second in another thread when `parallel`."""
    if not parallel:
        return first(), second()
    other = Background(second)
    try:
        a = first()
    except BaseException:
        other.wait()  # leave no thread behind
        raise
    return a, other.result()
