"""The daemon's ``sources:`` syncs: each source pulled (and pushed to) every ``interval_s``.

One thread, started with the daemon; a source is synced once at start-up, then every
``sources[].interval_s`` (default ``daemon.sync_interval_s``). A sync that fails (the server is
down, a wrong password, a recipe that does not exist) is logged as one line and tried again on the
next interval; it never stops the daemon. What each source did last is in ``status.json``
(``sources``: ``last_sync``, ``last_ok``, ``last_error``, ``failures``, ``last_report``,
``interval_s``) for ``recengine status``. A config reloaded by SIGHUP is taken at the next look
(within :data:`LOOK_S`): new sources are synced at once, removed ones forgotten.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from recengine.config import ConfigError
from recengine.sources import SubsonicError

log = logging.getLogger(__name__)

#: The thread looks at least this often whether a sync is due or the config changed (s).
LOOK_S = 5.0


class SourceScheduler:
    """The engine's ``sources:`` synced on their intervals, on a thread of their own."""

    def __init__(self, engine: Any, stop: threading.Event):
        self.engine = engine
        self.stop = stop
        self._config: object = None  # the config the syncs were made from
        self._syncs: list[Any] = []
        self._due: dict[str, float] = {}  # source name -> monotonic time of its next sync
        self._state: dict[str, dict[str, Any]] = {}
        self._problem: str | None = None  # the sources: section cannot be read
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sync on a thread; without sources (and without a broken ``sources:``) no thread."""
        self._load()
        if not self._syncs and self._problem is None:
            return
        self._thread = threading.Thread(target=self._run, name="recengine-sources", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the thread after ``stop`` was set (a sync in flight may take a server timeout)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def health(self) -> dict[str, Any]:
        """``sources``: per source what its last sync did; ``sources_problem``: why none can run."""
        with self._lock:
            return {"sources": {name: dict(entry) for name, entry in self._state.items()},
                    "sources_problem": self._problem}

    # the thread --------------------------------------------------------------------------------

    def _load(self) -> None:
        """(Re)make the syncs when the engine's config is new (start-up, a reload)."""
        config = self.engine.config
        if config is self._config:
            return
        self._config = config
        try:
            syncs = self.engine.source_syncs()
        except ConfigError as exc:
            log.error("%s; no source is synced until the config is fixed", exc)
            with self._lock:
                self._syncs, self._problem, self._state = [], str(exc), {}
            self._due = {}
            return
        names = [s.settings.name for s in syncs]
        now = time.monotonic()
        self._due = {name: self._due.get(name, now) for name in names}  # a new source: at once
        with self._lock:
            self._syncs, self._problem = syncs, None
            self._state = {name: self._state.get(name) or _entry(s.settings.interval_s)
                           for name, s in zip(names, syncs, strict=True)}
            for s in syncs:
                self._state[s.settings.name]["interval_s"] = s.settings.interval_s

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self._load()
            except Exception:  # noqa: BLE001 - the thread must go on; the next look tries again
                log.exception("reading sources: failed")
            for sync in list(self._syncs):
                name = sync.settings.name
                if self.stop.is_set():
                    return
                if time.monotonic() >= self._due.get(name, 0.0):
                    self._sync(sync)
                    self._due[name] = time.monotonic() + sync.settings.interval_s
            next_due = min(self._due.values(), default=time.monotonic() + LOOK_S)
            self.stop.wait(max(0.0, min(LOOK_S, next_due - time.monotonic())))

    def _sync(self, sync: Any) -> None:
        name, started = sync.settings.name, time.time()
        try:
            report = sync.run()
        except Exception as exc:  # noqa: BLE001 - one line, tried again on the next interval
            message = str(exc) if _expected(exc) else f"{type(exc).__name__}: {exc}"
            log.error("source %s: sync failed: %s (trying again in %.0f s)", name, message, sync.settings.interval_s)
            log.debug("source %s: sync failed", name, exc_info=True)
            with self._lock:
                entry = self._state.setdefault(name, _entry(sync.settings.interval_s))
                entry.update(last_sync=started, last_error=message, failures=entry["failures"] + 1)
            return
        took = time.time() - started
        changed = report.likes or report.unlikes or report.plays
        (log.info if changed else log.debug)("%s (%.1f s)", report.summary(), took)
        with self._lock:
            entry = self._state.setdefault(name, _entry(sync.settings.interval_s))
            entry.update(last_sync=started, last_ok=time.time(), last_error=None, failures=0,
                         last_report=report.summary())


def _entry(interval_s: float) -> dict[str, Any]:
    return {"interval_s": interval_s, "last_sync": None, "last_ok": None, "last_error": None, "failures": 0,
            "last_report": None}


def _expected(exc: Exception) -> bool:
    """Errors whose message already says it all (the server's answer, a missing recipe)."""
    return isinstance(exc, SubsonicError | LookupError)
