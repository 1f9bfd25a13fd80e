"""The model manager: follows deployment state and hot-swaps models without dropping a request.

A request reads `manager.snapshot` once and uses only that object, which is never mutated; a
change builds a whole new snapshot (new versions loaded and verified first) and swaps the one
reference. A request in flight keeps the old sessions alive until it finishes.

A version that fails to load (a tampered file, a missing artifact) is counted and retried on
the next poll, and its variant keeps serving what it had: the gateway is then live but not
ready, since readiness means every deployed variant serves the version deployment state names.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property

from tradeloop.errors import HashMismatch, TradeloopError
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.runtime import LoadedModel
from tradeloop.serving.source import ModelSource
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, current

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Served:
    """One deployed variant and the model answering for it (maybe an older version)."""

    deployed: Deployed
    model: LoadedModel

    @property
    def variant(self) -> str:
        return self.deployed.variant

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def current(self) -> bool:
        return self.model.version == self.deployed.version


@dataclass(frozen=True)
class Snapshot:
    model_name: str
    deployed: tuple[Deployed, ...] = ()
    served: dict[str, Served] = field(default_factory=dict)  # by variant
    errors: dict[str, str] = field(default_factory=dict)  # by variant: why its version is not up

    @property
    def ready(self) -> bool:
        return bool(self.deployed) and all(
            d.variant in self.served and self.served[d.variant].current for d in self.deployed
        )

    @cached_property
    def live(self) -> list[Served]:
        return [s for s in self.served.values() if s.deployed.mode == "live"]

    @cached_property
    def shadow(self) -> list[Served]:
        return [s for s in self.served.values() if s.deployed.mode == "shadow"]

    @cached_property
    def known_features(self) -> frozenset[str]:
        """Every feature some served variant uses: what a request may carry."""
        return frozenset(n for s in self.served.values() for n in s.model.feature_names)

    @property
    def primary(self) -> Served | None:
        """The model whose schema the gateway advertises: the champion, else any live one."""
        return self.served.get("champion") or next(iter(self.live), None)


class ModelManager:
    def __init__(
        self,
        store: Store,
        model_name: str,
        source: ModelSource,
        metrics: GatewayMetrics,
        *,
        poll_interval: float = 2.0,
    ) -> None:
        self.store = store
        self.model_name = model_name
        self.source = source
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.snapshot = Snapshot(model_name)
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, str] = {}  # version -> last error, to log each failure once

    def refresh(self) -> Snapshot:
        """Read deployment state now and swap in whatever changed. Safe from any thread."""
        with self._refresh_lock:
            desired = tuple(current(self.store, self.model_name))
            old = self.snapshot
            if desired == old.deployed and not old.errors:
                return old
            loaded = {s.model.version: s.model for s in old.served.values()}
            served: dict[str, Served] = {}
            errors: dict[str, str] = {}
            for d in desired:
                model = loaded.get(d.version)
                if model is None:
                    try:
                        model = self._load(d.version)
                        loaded[d.version] = model
                    except TradeloopError as exc:
                        errors[d.variant] = str(exc)
                        before = old.served.get(d.variant)
                        model = before.model if before is not None else None
                if model is not None:
                    served[d.variant] = Served(d, model)
            new = Snapshot(self.model_name, desired, served, errors)
            self.snapshot = new  # the atomic swap
            self._publish(old, new)
            return new

    def _load(self, version: str) -> LoadedModel:
        try:
            model = LoadedModel(self.source.fetch(self.model_name, version))
        except HashMismatch as exc:
            self._failure(version, "integrity_error", exc)
            raise
        except TradeloopError as exc:
            self._failure(version, "error", exc)
            raise
        except Exception as exc:  # a source's transport error: keep serving, retry next poll
            self._failure(version, "error", exc)
            raise TradeloopError(f"version {version}: {type(exc).__name__}: {exc}") from exc
        self.metrics.model_loads.labels("success").inc()
        self._failed.pop(version, None)
        log.info("loaded %s version %s", self.model_name, version)
        return model

    def _failure(self, version: str, result: str, exc: Exception) -> None:
        self.metrics.model_loads.labels(result).inc()
        if self._failed.get(version) != str(exc):
            log.error("cannot load %s version %s: %s", self.model_name, version, exc)
        self._failed[version] = str(exc)

    def _publish(self, old: Snapshot, new: Snapshot) -> None:
        for s in old.served.values():
            with contextlib.suppress(KeyError):
                self.metrics.model_info.remove(
                    self.model_name, s.variant, s.version, s.deployed.mode
                )
        for s in new.served.values():
            self.metrics.model_info.labels(
                self.model_name, s.variant, s.version, s.deployed.mode
            ).set(1)
        self.metrics.ready.set(1 if new.ready else 0)

    # ------------------------------------------------------------------ polling

    def start(self) -> None:
        """Load what is deployed now, then follow changes from a background thread."""
        self._safe_refresh()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="tradeloop-models", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self._safe_refresh()

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception:  # the database may be briefly away; the next poll tries again
            log.exception("reading deployment state for %s failed", self.model_name)
