"""Event hooks (``track_added``, ``index_rebuilt``, ``history_recorded``, ``startup``, ...) with a deadline.

Events are delivered in order on a dispatcher thread, through pluggy (so wrappers see them), each
implementation isolated (:mod:`recengine.plugin.isolation`). The caller waits for its event at most
``deadline_s``: a plugin that hangs costs a command or the daemon that long once, never for ever.
A call past its deadline is logged and left to finish on its own (daemon) thread; later events go
to a fresh dispatcher thread, so one stuck plugin does not hold up the events behind it, and
SIGTERM still ends the process within seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pluggy

log = logging.getLogger(__name__)


@dataclass
class _Event:
    hook: str
    kwargs: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0


class EventDispatcher:
    """Broadcasts event hooks of one plugin manager, in order, each with a deadline."""

    def __init__(self, pm: pluggy.PluginManager, *, deadline_s: float = 5.0):
        self.pm = pm
        self.deadline_s = deadline_s
        self._queue: queue.Queue[_Event] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._current: _Event | None = None
        self.overdue: list[str] = []  # hooks abandoned past their deadline (for status and tests)

    def emit(self, hook: str, *, wait: bool = True, **kwargs: Any) -> bool:
        """Deliver ``hook(**kwargs)`` to every implementation. With ``wait`` (the default), return
        once it was delivered or its deadline passed; returns whether it was delivered in time."""
        if not getattr(self.pm.hook, hook).get_hookimpls():
            return True  # nobody listens: nothing to hand over
        event = _Event(hook, kwargs)
        with self._lock:
            self._queue.put(event)
            self._ensure_worker()
        if not wait:
            return True
        return self._wait(event)

    def _wait(self, event: _Event) -> bool:
        while not event.done.wait(0.05):
            with self._lock:
                stuck = self._current
                if stuck is not None and stuck.started and time.monotonic() - stuck.started > self.deadline_s:
                    self._abandon(stuck)
            if event.done.is_set():
                break
            if event.started and time.monotonic() - event.started > self.deadline_s:
                return False
        return True

    def _abandon(self, stuck: _Event) -> None:
        """Called with the lock held: leave ``stuck`` to its thread, serve the rest on a new one."""
        plugins = [i.plugin_name for i in getattr(self.pm.hook, stuck.hook).get_hookimpls()]
        log.error("hook %s did not return within %.0f s (plugins: %s); recengine goes on without it",
                  stuck.hook, self.deadline_s, ", ".join(plugins))
        self.overdue.append(stuck.hook)
        self._current = None
        self._worker = None
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._worker is None:
            worker = threading.Thread(target=self._run, name="recengine-events", daemon=True)
            self._worker = worker
            worker.start()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                event = self._queue.get(timeout=1.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty() and self._worker is me:
                        self._worker = None
                        return
                continue
            with self._lock:
                if self._worker is not me:  # abandoned while waiting: hand the event back
                    self._queue.put(event)
                    return
                self._current = event
                event.started = time.monotonic()
            try:
                getattr(self.pm.hook, event.hook)(**event.kwargs)
            except Exception:  # isolation catches plugins' errors; this is a wrapper's or ours
                log.exception("event hook %s failed", event.hook)
            finally:
                event.done.set()
            with self._lock:
                if self._worker is not me:
                    return  # abandoned past the deadline: a fresh thread serves the queue
                self._current = None

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted so far was delivered (or abandoned)."""
        marker = _Event("", {})
        deadline = time.monotonic() + (self.deadline_s * 2 if timeout is None else timeout)
        with self._lock:
            pending = list(self._queue.queue) + ([self._current] if self._current else [])
        pending.append(marker)
        marker.done.set()
        for event in pending:
            while not event.done.wait(0.05):
                with self._lock:
                    stuck = self._current
                    if stuck is not None and time.monotonic() - stuck.started > self.deadline_s:
                        self._abandon(stuck)
                if time.monotonic() > deadline:
                    return False
        return True
