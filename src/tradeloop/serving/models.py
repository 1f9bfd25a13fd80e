"""The model manager: follows deployment state and hot-swaps models without dropping a request.

A request reads `manager.snapshot` once and uses only that object, which is never mutated; a
change builds a whole new snapshot (new versions loaded and verified first) and swaps the one
reference. A request in flight keeps the old sessions alive until it finishes.

A version that fails to load (a tampered file, a missing artifact) is counted and retried on
the next poll, and its variant keeps serving what it had, or after a restart the last good
version kept on disk (`last_good`). The gateway is then degraded: every deployed variant
answers, but not (only) with the version deployment state names. `ready` means every deployed
variant serves its deployed version and nothing failed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tradeloop.errors import HashMismatch, TradeloopError
from tradeloop.serving.error_log import ErrorLog
from tradeloop.serving.last_good import LastGood
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.runtime import LoadedModel
from tradeloop.serving.source import ModelArtifact, ModelSource
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, current

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Served:
    """One deployed variant and the model answering for it (maybe an older version)."""

    deployed: Deployed
    model: LoadedModel
    fallback: bool = False  # answered by the last good copy kept on disk, not the source

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
        return (
            bool(self.deployed)
            and not self.errors
            and all(
                d.variant in self.served and self.served[d.variant].current for d in self.deployed
            )
        )

    @property
    def degraded(self) -> bool:
        """Every deployed variant answers, but some deployed version failed to load."""
        return (
            bool(self.deployed)
            and bool(self.errors)
            and all(d.variant in self.served for d in self.deployed)
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

    def report(self) -> dict[str, Any]:
        """What answers for each deployed variant: `/readyz`'s body and the store's record."""
        variants = []
        for d in self.deployed:
            served = self.served.get(d.variant)
            variants.append(
                {
                    "variant": d.variant,
                    "mode": d.mode,
                    "weight": d.weight,
                    "deployed_version": d.version,
                    "serving_version": served.version if served else None,
                    "loaded": bool(served and served.current),
                    "last_good": bool(served and served.fallback),
                    "error": self.errors.get(d.variant),
                }
            )
        state = "ready" if self.ready else "degraded" if self.degraded else "not ready"
        return {
            "ready": self.ready,
            "degraded": self.degraded,
            "state": state,
            "model": self.model_name,
            "variants": variants,
        }

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
        last_good: LastGood | None = None,
        errors: ErrorLog | None = None,
        reporter: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.reporter = reporter
        self._reported: dict[str, Any] | None = None
        self.store = store
        self.last_good = last_good
        self.errors = errors or ErrorLog()
        self._artifacts: dict[str, ModelArtifact] = {}  # version -> verified bytes, while served
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
            loaded = {s.model.version: s.model for s in old.served.values() if not s.fallback}
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
                        if before is not None:
                            served[d.variant] = (
                                before
                                if before.deployed == d
                                else Served(d, before.model, before.fallback)
                            )
                        elif (kept := self._recall(d.variant)) is not None:
                            served[d.variant] = Served(d, kept, fallback=True)
                        continue
                served[d.variant] = Served(d, model)
            new = Snapshot(self.model_name, desired, served, errors)
            self.snapshot = new  # the atomic swap
            self._publish(old, new)
            self._keep(new)
            return new

    def _recall(self, variant: str) -> LoadedModel | None:
        """The variant's last good version from disk (after a restart), verified again."""
        if self.last_good is None:
            return None
        artifact = self.last_good.recall(self.model_name, variant)
        if artifact is None:
            return None
        try:
            model = LoadedModel(artifact)
        except TradeloopError as exc:
            log.error("the last good copy of %s %s is unusable: %s", self.model_name, variant, exc)
            return None
        self._artifacts[artifact.version] = artifact
        log.warning(
            "%s %s: serving the last good version %s from the local cache (degraded)",
            self.model_name,
            variant,
            artifact.version,
        )
        return model

    def _keep(self, snap: Snapshot) -> None:
        """Remember each variant serving its deployed version as that variant's last good."""
        versions = {s.version for s in snap.served.values()}
        for v in [v for v in self._artifacts if v not in versions]:
            del self._artifacts[v]
        if self.last_good is None:
            return
        for s in snap.served.values():
            artifact = self._artifacts.get(s.version)
            if s.current and artifact is not None:
                try:
                    self.last_good.remember(s.variant, artifact)
                except OSError as exc:
                    self.errors.report("last_good", exc, "could not keep the last good model")

    def _load(self, version: str) -> LoadedModel:
        try:
            artifact = self.source.fetch(self.model_name, version)
            model = LoadedModel(artifact)
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
        self._artifacts[version] = artifact
        self._failed.pop(version, None)
        log.info("loaded %s version %s", self.model_name, version)
        return model

    def _failure(self, version: str, result: str, exc: Exception) -> None:
        self.metrics.model_loads.labels(result).inc()
        if self._failed.get(version) != str(exc):
            log.error("cannot load %s version %s: %s", self.model_name, version, exc)
        self._failed[version] = str(exc)

    def _publish(self, old: Snapshot, new: Snapshot) -> None:
        kept = {(s.variant, s.version, s.deployed.mode) for s in new.served.values()}
        for s in old.served.values():
            labels = (self.model_name, s.variant, s.version, s.deployed.mode)
            if labels[1:] not in kept:  # under --workers a value's file outlives remove()
                self.metrics.model_info.labels(*labels).set(0)
            with contextlib.suppress(KeyError):
                self.metrics.model_info.remove(*labels)
        for s in new.served.values():
            self.metrics.model_info.labels(
                self.model_name, s.variant, s.version, s.deployed.mode
            ).set(1)
        self.metrics.ready.set(1 if new.ready else 0)
        self.metrics.degraded.set(1 if new.degraded else 0)

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
        except Exception as exc:  # the database may be briefly away; the next poll tries again
            self.errors.report("deployment_poll", exc, f"reading {self.model_name}'s deployment")
        else:
            self.errors.resolved("deployment_poll")
        self._report()

    def _report(self) -> None:
        """Tell the store what answers when that changed (retried each poll until it works)."""
        if self.reporter is None:
            return
        report = self.snapshot.report()
        if report == self._reported:
            return
        try:
            self.reporter(report)
        except Exception as exc:
            self.errors.report("serving_report", exc, "recording what the gateway serves")
        else:
            self._reported = report
            self.errors.resolved("serving_report")
