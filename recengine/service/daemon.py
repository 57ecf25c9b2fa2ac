"""``recengine daemon``: watch the library, keep the catalog, index and playlists fresh.

One process, in the foreground (systemd-friendly). Start-up: take the data-dir lock (a second
daemon exits 2, "already running (pid N)"), check ffmpeg, reconcile everything that changed while
it was down, then watch. The watcher's settled paths are applied as hints; a full reconcile runs
on a timer and whenever the watcher asks (overflow, restart, folder moves): events are hints, the
reconcile is the truth. Featurised tracks are searchable at once (index delta), the index is
rebuilt per policy on a builder thread, and playlists whose inputs changed are refreshed; the
``sources:`` are synced on their own intervals (:mod:`recengine.service.sources`). New files get the fast
pass only; the deep one follows while the queue is idle (:mod:`recengine.service.deep`).
SIGTERM/SIGINT stop it within a few seconds; work in flight stays pending for next time.
SIGHUP re-reads the config (:mod:`recengine.service.reload`). Under systemd (``Type=notify``) it
says READY once it watches, RELOADING/READY around a reload and STOPPING when it stops.

A turn that fails (a plugin, an I/O error, a full disk) is retried after 1, 2, 4 ... seconds, at most
:data:`~recengine.service.retry.RETRY_MAX_S` apart, with one traceback and then one line per retry; ``status`` says
``retrying`` and what is failing (``problem``) until a turn succeeds. A catalog that cannot be
used at all (damaged, newer schema, unreadable) stops the daemon with exit code
:data:`~recengine.service.retry.EXIT_CATALOG_UNUSABLE` and the message saying what to do (systemd:
``RestartPreventExitStatus=2 3`` keeps it, and a daemon refused for its configuration (exit 2), from being
restarted in a loop).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recengine.analysis import ExecutorUnavailable
from recengine.analysis.decode import preflight
from recengine.catalog import CatalogError, CatalogFull, backup_if_due
from recengine.fileio import sweep_stale_temps
from recengine.index import IndexStore, index_directory
from recengine.library import Scanner, ScanReport
from recengine.library.watch import LibraryWatcher
from recengine.service.deep import DeepPass
from recengine.service.lock import DataDirLock
from recengine.service.reload import ConfigReloader
from recengine.service.retry import Backoff
from recengine.service.settings import DaemonSettings
from recengine.service.sources import SourceScheduler
from recengine.service.status import write_status
from recengine.service.systemd import notify_ready, notify_stopping

log = logging.getLogger(__name__)

#: The catalog is copied once a day (``catalog.backups`` copies kept); whether one is due is looked at
#: every BACKUP_CHECK_S.
BACKUP_EVERY_S, BACKUP_CHECK_S = 86400.0, 60.0


class Daemon:
    """The long-running service around one engine."""

    def __init__(self, engine, *, settle_s: float | None = None, status_interval_s: float = 2.0):
        """``engine``: the :class:`recengine.Engine` served; ``settle_s`` overrides ``daemon.settle_s``."""
        self.engine = engine
        self.settings = DaemonSettings.from_config(engine.config)
        self.settle_s = self.settings.settle_s if settle_s is None else settle_s
        self.reconcile_interval_s = self.settings.reconcile_interval_s
        self.status_interval_s = status_interval_s
        self.stop_event = threading.Event()
        self.hints: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.scanner: Scanner | None = None  # made once the lock is held: it opens the catalog
        self.pool = None
        self.deep: DeepPass | None = None  # the deep pass's batches (made with the scanner)
        self.watcher: LibraryWatcher | None = None
        self.lock = DataDirLock(engine.config.data_dir)
        self.reloader = ConfigReloader()
        self.state = "starting"
        self.stats: dict[str, Any] = {
            "featurised": 0,
            "failed": 0,
            "last_reconcile": None,
            "started": time.time(),
            "rate": 0.0,
        }
        self._builder: threading.Thread | None = None
        self._backup: threading.Thread | None = None
        self._backup_check = 0.0  # monotonic time of the next look
        self._player: threading.Thread | None = None
        self._http: Any = None  # the web server's handle (recengine.web.ServerHandle)
        self._last_event_id = 0
        self._playlists_due: dict[str, float] = {}  # recipe -> since when its inputs changed
        self._last_status = 0.0
        self.exit_code = 0
        self.backoff = Backoff()  # what is failing, for status
        self.sources = SourceScheduler(engine, self.stop_event)  # sources: synced on their intervals

    # lifecycle -------------------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        self.stop_event.set()

    def run(self, *, install_signals: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`stop` from another thread); returns the exit code."""
        self.lock.acquire()
        try:
            if install_signals:  # first: a stop during start-up still ends cleanly with 0
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, self.stop)
                signal.signal(signal.SIGHUP, self.reloader.request)
            preflight()
            try:
                self.scanner = self.engine.scanner(progress=False)  # opens (and migrates) the catalog first
            except CatalogError as exc:
                return self._unusable(exc)
            self._sweep_temps()
            self.engine.emit("startup", engine=self.engine)
            self.pool = self.scanner.new_pool()
            self.deep = DeepPass(self.scanner, busy=lambda: not self.hints.empty(), stopping=self.stop_event.is_set,
                                 changed=self._library_changed)
            self._last_event_id = self._max_event_id()
            if not self.stop_event.is_set():
                # watch before the start-up reconcile: what changes while it runs (minutes, on a
                # first scan) arrives as hints instead of waiting for the next timer reconcile
                self._start_watcher()
                self._start_player()
                self._start_http()
                self.sources.start()
                notify_ready()  # watching now: what the start-up reconcile finds is work, not start-up
                self._attempt(functools.partial(self._turn, ["startup"], [], []))
                # recipes may be new or changed since the last run: make each once (a file whose
                # bytes would not change is left alone)
                for recipe in self.engine.playlists.recipes:
                    self._playlists_due.setdefault(recipe.name, time.monotonic())
                self.loop()
        finally:
            self.state = "stopping"
            self._shutdown()
        return self.exit_code

    def _sweep_temps(self) -> None:
        """Holding the data dir's lock, remove every temp file a crash left behind (index and
        playlist folders); other processes only ever sweep temps older than an hour."""
        IndexStore(index_directory(self.engine.config.data_dir)).sweep_temps(min_age_s=0)
        for output in self.engine.playlists.outputs.values():
            sweep_stale_temps(output.dir, min_age_s=0)

    def _start_watcher(self) -> None:
        library, settings = self.scanner.settings.library, self.settings
        outputs = [Path(o.dir) for o in self.engine.playlists.outputs.values()]
        self.watcher = LibraryWatcher(
            library.folders,  # every root, also one missing now: the watcher re-watches it when it appears
            on_settled=lambda paths: self.hints.put(("settled", paths)),
            on_removed=lambda paths: self.hints.put(("removed", paths)),
            on_reconcile=lambda reason: self.hints.put(("reconcile", reason)),
            extensions=library.extensions,
            ignore_dirs=outputs + [self.engine.config.data_dir],
            settle_s=self.settle_s,
            poll_settle_s=settings.poll_settle_s,
            poll_interval_s=settings.poll_interval_s,
            force_polling=settings.force_polling,
        )
        self.watcher.start()

    def _start_player(self) -> None:
        """With ``daemon.watch_backend``, follow the configured backend's player (MPD): plays and
        skips become history and the queue is topped up. The backend retries its connection with
        backoff on its own thread; it never stops the daemon."""
        settings = self.settings
        if not settings.watch_backend:
            return
        player = self.engine.player
        try:
            backend = player.choose()
        except LookupError as exc:
            log.error("daemon.watch_backend: %s", exc)
            return
        if not hasattr(backend, "watch"):
            log.warning("backend %s reports no plays or skips; daemon.watch_backend has nothing to follow",
                        backend.name)
            return
        self._player = threading.Thread(
            target=player.keep_playing, name=f"recengine-player-{backend.name}", daemon=True,
            args=(backend, self.stop_event),
            kwargs={"user": settings.topup_user, "recipe": settings.topup_playlist})
        self._player.start()
        log.info("following the %s player: plays and skips are recorded", backend.name)

    def _start_http(self) -> None:
        """With ``http.enabled`` (the default), the web page and API on a thread (loopback by
        default; :mod:`recengine.web`). A port in use is logged: the library work goes on."""
        from recengine.web import WebSettings, start_server

        web = WebSettings.from_config(self.engine.config)
        if web.enabled:
            try:
                self._http = start_server(self.engine, web, self.stop_event)
            except OSError as exc:
                log.error("the web page and API could not start on %s:%s: %s", web.host, web.port, exc)

    def _shutdown(self) -> None:
        notify_stopping()
        self.stop_event.set()  # also ends the player thread when the loop ended on its own
        if self._http is not None:
            self._http.stop()
        if self._player is not None:
            self._player.join(timeout=3)
        self.sources.join(timeout=5)
        if self.watcher is not None:
            self.watcher.stop()
        if self.pool is not None:
            self.pool.close()
        if self.deep is not None:
            self.deep.close()
        if self._builder is not None:
            self._builder.join(timeout=5)
        if self._backup is not None:
            self._backup.join(timeout=5)
        with contextlib.suppress(Exception):
            self.engine.emit("shutdown", engine=self.engine)
        with contextlib.suppress(Exception):
            self.write_status()
        self.lock.release()

    # the loop --------------------------------------------------------------------------------------

    def loop(self) -> None:
        self.state = "watching"
        last_reconcile = time.monotonic()
        while not self.stop_event.is_set():
            settled: list[Path] = []
            removed: list[Path] = []
            reconcile: list[str] = []
            items: list[tuple[str, Any]] = []  # fresh each turn: never replay the last turn's hints
            try:
                items.append(self.hints.get(timeout=0.25))
                while True:  # coalesce everything waiting
                    items.append(self.hints.get_nowait())
            except queue.Empty:
                pass
            for kind, value in items:
                if kind == "settled":
                    settled += value
                elif kind == "removed":
                    removed += value
                else:
                    reconcile.append(value)
            if time.monotonic() - last_reconcile >= self.reconcile_interval_s:
                reconcile.append("timer")
            if reconcile:
                last_reconcile = time.monotonic()
            self._attempt(functools.partial(self._turn, reconcile, settled, removed))
            if reconcile:
                last_reconcile = time.monotonic()
            elif not items and self.state == "watching":  # nothing live waiting: a small deep batch
                self._attempt(self.deep.turn)

    def _turn(self, reconcile: list[str], settled: list[Path], removed: list[Path]) -> None:
        if self.reloader.pending:
            self._reload()
        with self.scanner.writing(wait=False) as mine:
            if not mine:
                self._wait_for_writer(reconcile, settled, removed)
                return
            if self.state == "waiting":  # a scan changed the catalog meanwhile: search and list it
                log.info("the other writer is done; going on")
                self.state = "watching"
                self.engine.index.refresh()
                self._inputs_changed("library")
            if reconcile:
                self.full_reconcile(", ".join(sorted(set(reconcile))))
            elif settled or removed:
                self.apply_hints(settled, removed)
            self._maintain()

    def _wait_for_writer(self, reconcile: list[str], settled: list[Path], removed: list[Path]) -> None:
        """Another process (``recengine scan``) holds the writer lock: keep this turn's work for
        later, say so in status, look again in a second."""
        if self.state != "waiting":
            log.info("another recengine (pid %s) is updating the catalog; waiting for it",
                     self.scanner.writer_lock.holder())
            self.state = "waiting"
        if settled:
            self.hints.put(("settled", settled))
        if removed:
            self.hints.put(("removed", removed))
        for reason in reconcile:
            self.hints.put(("reconcile", reason))
        if time.monotonic() - self._last_status >= self.status_interval_s:
            self.write_status()
        self.stop_event.wait(1.0)

    def _attempt(self, work: Callable[[], None]) -> bool:
        """Run one turn of work: a failure is retried later (backing off), an unusable catalog
        stops the daemon. True when it succeeded."""
        try:
            work()
        except (CatalogFull, ExecutorUnavailable) as exc:  # said in one line: no traceback helps here
            self._failing(exc, traceback=False)
            return False
        except CatalogError as exc:
            self._unusable(exc)
            return False
        except Exception as exc:  # a bad file, plugin or transient I/O error must not end the daemon
            self._failing(exc)
            return False
        if self.backoff.succeeded():
            self.state = "watching"
        return True

    def _failing(self, exc: Exception, *, traceback: bool = True) -> None:
        delay = self.backoff.failed(exc, traceback=traceback)
        self.state = "retrying"
        with contextlib.suppress(Exception):
            self.write_status()
        self.hints.put(("reconcile", "error"))
        self.stop_event.wait(delay)

    def _unusable(self, exc: CatalogError) -> int:
        self.exit_code = self.backoff.unusable(exc)
        self.stop_event.set()
        return self.exit_code

    def _reload(self) -> None:
        """A SIGHUP: the new config's recipes are each made once (as at start-up), after an index
        with its weights is built if they changed; a config that fails keeps the running one."""
        if self._builder is not None:
            self._builder.join()  # it builds with the index being replaced
        if not self.reloader.poll(self.engine):
            return
        if self.engine.index.store.generation is None:
            self._rebuild()
        now = time.monotonic()
        self._playlists_due = {recipe.name: now for recipe in self.engine.playlists.recipes}

    def _work(self, report: ScanReport) -> None:
        """Featurise what is pending, then make it searchable and schedule playlists."""
        self.state = "analysing"
        started = time.monotonic()
        self.scanner.featurise(report, stop=self._stopping, pool=self.pool)
        took = time.monotonic() - started
        if report.featurised:
            self.stats["rate"] = report.featurised / max(took, 1e-6)
        self.stats["featurised"] += report.featurised
        self.stats["failed"] += sum(report.failed.values())
        self._library_changed(report.featurised + report.removed + report.moved)
        self.state = "watching"

    def _library_changed(self, changes: int) -> None:
        """Count ``changes`` toward the rebuild rule, make them searchable, mark the playlists due."""
        if changes:
            self.deep.wake()  # the fast pass's tracks are due for the deep one
            self.engine.index.note_change(changes)
            self.engine.index.refresh()
            self._inputs_changed("library")

    def _stopping(self) -> bool:
        """The featuriser's stop check (called at least every 0.5 s): also keeps status.json
        current through a long scan (the first one takes minutes to hours)."""
        if time.monotonic() - self._last_status >= self.status_interval_s:
            with contextlib.suppress(Exception):
                self.write_status()
        return self.stop_event.is_set()

    def full_reconcile(self, reason: str) -> None:
        log.info("reconciling the library (%s)", reason)
        self.state = "reconciling"
        started = time.monotonic()
        report = ScanReport()
        self.scanner.reconcile(report)
        self.stats["last_reconcile"] = time.time()
        self._work(report)
        report.seconds = time.monotonic() - started
        self._log_report(report, reason)

    def apply_hints(self, settled: list[Path], removed: list[Path]) -> None:
        started = time.monotonic()
        report = ScanReport()
        self.scanner.reconcile_paths(report, settled=settled, removed=removed)
        self._work(report)
        report.seconds = time.monotonic() - started
        self._log_report(report, "watcher")

    def _log_report(self, report: ScanReport, reason: str) -> None:
        if report.added or report.updated or report.moved or report.removed or report.failed:
            log.info("%s: %s", reason, report.summary())
        for root, why in report.unavailable:
            log.warning("%s is unavailable (%s); nothing under it is changed", root, why)

    def _maintain(self) -> None:
        """Index rebuilds, playlist refreshes, history changes, status file."""
        index = self.engine.index
        if index.needs_rebuild() and (self._builder is None or not self._builder.is_alive()):
            self._builder = threading.Thread(
                target=self._rebuild, name="recengine-index-builder", daemon=True
            )
            self._builder.start()
        if self.settings.backups and time.monotonic() >= self._backup_check:
            self._backup_check = time.monotonic() + BACKUP_CHECK_S
            self._backup = threading.Thread(target=self._back_up, name="recengine-catalog-backup", daemon=True)
            self._backup.start()
        event_id = self._max_event_id()
        if event_id != self._last_event_id:
            self._last_event_id = event_id
            self._inputs_changed("history")
        self._refresh_playlists()
        if time.monotonic() - self._last_status >= self.status_interval_s:
            self.write_status()

    def _inputs_changed(self, reason: str) -> None:
        """Mark the recipes refreshed on ``reason`` (library/history) as due."""
        for recipe in self.engine.playlists.recipes:
            if reason in recipe.refresh_on:
                self._playlists_due.setdefault(recipe.name, time.monotonic())

    def _refresh_playlists(self) -> None:
        """Re-make due recipes once their ``min_interval_s`` allows; a change that arrives inside
        the interval stays due (it is not dropped), so the file catches up when the interval ends."""
        playlists = self.engine.playlists
        now = time.time()
        due = [name for name in self._playlists_due
               if now - playlists.last_refresh.get(name, 0.0) >= playlists.get(name).min_interval_s]
        for name in due:
            del self._playlists_due[name]
        if due:
            try:
                playlists.refresh(due, force=True, now=now)
            except Exception:
                log.exception("refreshing playlists %s failed", ", ".join(due))
        try:
            playlists.refresh(reason="timer", force=False, now=now)
        except Exception:
            log.exception("refreshing playlists on their timer failed")

    def _rebuild(self) -> None:
        try:
            self.engine.index.build()
        except Exception:
            log.exception("index rebuild failed; the previous generation keeps serving")

    def _back_up(self) -> None:
        try:
            backup_if_due(self.engine.catalog, keep=self.settings.backups, every_s=BACKUP_EVERY_S)
        except Exception:
            log.exception("backing the catalog up failed; trying again later")

    def _max_event_id(self) -> int:
        return self.engine.catalog.last_event_id()

    # status ----------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """What status.json holds: pid, state (starting, reconciling, analysing, watching, retrying,
        stopping), problem (what is failing, or None), queue, roots, watcher, index, counters and
        the sources' syncs (:class:`~recengine.service.sources.SourceScheduler`)."""
        watcher = self.watcher.health() if self.watcher is not None else {}
        try:
            return {**self._catalog_health(), **self._health(watcher)}
        except Exception:  # the catalog cannot be read: say what the daemon knows without it
            return {**self._health(watcher), "health": "failing"}

    def _catalog_health(self) -> dict[str, Any]:
        index = self.engine.index  # opening loads the newest generation, it never builds one
        configured = {os.path.abspath(f) for f in self.engine.config.library_folders}
        roots = {path: state for _, path, state in self.engine.catalog.roots() if path in configured}
        counts = self.engine.catalog.counts()
        return {
            "health": "degraded" if any(s != "available" for s in roots.values()) else "ok",
            "roots": roots,
            "failures": counts["failures"],
            "skipped": counts["skipped"],
            "passes": {**self.engine.passes(), "deep_state": self.deep.state if self.deep else "none"},
            "index": {
                "generation": index.store.generation,
                "size": index.store.size,
                "built_at": index.built_at or None,
                "fresh": index.store.stale,
            },
        }

    def _health(self, watcher: dict[str, Any]) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "state": self.state,
            "problem": self.backoff.problem,
            "queue": self.hints.qsize() + int(watcher.get("pending", 0)),
            "tracks_per_s": round(self.stats["rate"], 2),
            "featurised": self.stats["featurised"],
            "failed": self.stats["failed"],
            "last_reconcile": self.stats["last_reconcile"],
            "watcher": {"roots": watcher.get("roots", {}), "restarts": watcher.get("restarts", 0)},
            **self.sources.health(),
            "updated": time.time(),
        }

    def write_status(self) -> None:
        self._last_status = time.monotonic()
        write_status(self.engine.config.data_dir, self.health())
