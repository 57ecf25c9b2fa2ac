"""The ``mpd`` playback backend: queues tracks in Music Player Daemon and follows what it plays.

Config (``plugins.mpd.*``):

- ``host`` (``localhost``; a path starting with ``/`` or ``@`` is a unix socket), ``port`` (6600),
  ``password`` (secret; write ``${MPD_PASSWORD}`` to read it from the environment); when the
  file does not set them, ``MPD_HOST`` (``[password@]host``) and ``MPD_PORT`` are read as mpc does,
  ``timeout_s`` (10: connect and command time limit);
- ``music_dir``: MPD's ``music_directory`` as recengine sees it. MPD names files relative to it,
  so this is how tracks become MPD URIs and back. Unset: the library folder, when there is
  exactly one;
- ``user`` (``default``): whose history plays and skips go to;
- ``topup_below`` (2): in :meth:`MPDBackend.watch` with a ``topup`` callback, when fewer than
  this many tracks follow the current one, ``topup(topup_below)`` is asked for tracks to append
  (like Lyrion's "Don't Stop The Music"); 0 turns top-up off.

API:

- ``MPDBackend(host="localhost", port=6600, *, password=None, music_dir=None, user="default",
  topup_below=2, resolve=None, timeout=10.0, backoff_cap=30.0)``; ``resolve(absolute_path) ->
  Track | None`` maps a file back to the catalog (e.g. ``engine.catalog.track_by_path``); it can
  also be set later as ``backend.resolve`` or passed to :meth:`~MPDBackend.watch`.
  ``watcher_connected`` is True while a watcher holds a connection.
- ``play(tracks, mode="replace" | "append", record=None) -> int``: ``replace`` clears MPD's queue,
  adds the tracks and plays from the first; ``append`` adds them at the end and starts playing
  them only if MPD was stopped. Returns how many tracks MPD accepted (tracks outside
  ``music_dir`` or unknown to MPD's database are left out with a warning). With ``record`` and no
  :meth:`watch` running, a watcher thread is started that records plays and skips into it until
  :meth:`close`. Raises :class:`BackendUnavailable` if MPD cannot be reached within ~3 s.
- ``now_playing() -> Track | None``.
- ``watch(record, stop_event, *, topup=None, topup_below=None, resolve=None)``: blocking loop for
  a thread of the caller. Waits on ``idle player playlist``, records plays and skips by the rules
  of :mod:`recengine.playback.tracker` (source ``"mpd"``), tops the queue up, and returns when
  ``stop_event`` is set (within ~0.25 s). It never raises: a lost connection is retried with
  capped exponential backoff (0.5 s ... ``backoff_cap``) for as long as it takes; other errors
  are logged.
  ``record`` and ``topup`` run on the watcher thread.
- ``close()``: stops the internal watcher and closes the command connection.

The plugin builds its backend from the config passed to the ``configure`` hook (kept per module,
so with several engines in one process the last configured one wins).

MPD specifics of the rules: a track is one queue entry (song id); listening time is wall-clock
time in state ``play``; a song change or stop before 30 s is a skip; reaching the end counts as
played; after a reconnect the same file still playing continues the same listen, anything else
is forgotten without an event (recengine did not see what happened meanwhile). Repeating a
single song starts a new listen each time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recengine.models import Track
from recengine.playback.errors import BackendUnavailable
from recengine.playback.mpd_client import (
    Backoff,
    MPDClient,
    MPDCommandError,
    MPDConnectionError,
    MPDError,
    mpd_environment,
)
from recengine.playback.tracker import PlayTracker
from recengine.plugin.protocols import Record
from recengine.plugin.spec import hookimpl

log = logging.getLogger(__name__)

__all__ = ["BackendUnavailable", "MPDBackend"]

Resolve = Callable[[str], Track | None]
TopUp = Callable[[int], list[Track]]

#: How long ``play``/``now_playing`` try to reach MPD before giving up.
CONNECT_WAIT_S = 3.0
IDLE_SUBSYSTEMS = ("player", "playlist")


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(str(value).split(":")[0])
    except ValueError:
        return None


class MPDBackend:
    """Plays through MPD; see the module docstring for the API and the rules."""

    name = "mpd"
    source = "mpd"

    def __init__(
        self,
        host: str = "localhost",
        port: int = 6600,
        *,
        password: str | None = None,
        music_dir: str | os.PathLike[str] | None = None,
        user: str = "default",
        topup_below: int = 2,
        resolve: Resolve | None = None,
        timeout: float = 10.0,
        backoff_cap: float = 30.0,
    ):
        self.host, self.port, self.password, self.timeout = host, port, password, timeout
        self.music_dir = (
            Path(os.path.abspath(os.path.expanduser(os.fspath(music_dir)))) if music_dir else None
        )
        self.user = user
        self.topup_below = topup_below
        self.resolve = resolve
        self.backoff_cap = backoff_cap
        #: True while a watcher holds a connection to MPD (for status displays and tests)
        self.watcher_connected = False
        self.record: Record | None = None
        self._lock = threading.Lock()
        self._client: MPDClient | None = None
        self._watching = 0
        self._auto_stop = threading.Event()
        self._auto_thread: threading.Thread | None = None
        self._warned_unresolved = False

    def new_client(self) -> MPDClient:
        return MPDClient(
            self.host,
            self.port,
            password=self.password,
            timeout=self.timeout,
            connect_timeout=min(self.timeout, 5.0),
        )

    # paths <-> MPD URIs -----------------------------------------------------------------------------

    def uri_for(self, path: str | os.PathLike[str]) -> str | None:
        """The MPD URI of the file at absolute ``path``: relative to ``music_dir``, ``/``-separated.

        Without a ``music_dir`` (or for a file outside it) a unix-socket connection uses
        ``file:///...`` (MPD plays local files by absolute path for local clients); else None.
        """
        p = os.path.abspath(os.fspath(path))
        if self.music_dir is not None:
            for base, target in (
                (str(self.music_dir), p),
                (os.path.realpath(self.music_dir), os.path.realpath(p)),
            ):
                rel = os.path.relpath(target, base)
                if not rel.startswith(("..", "/")) and rel != ".":
                    return rel.replace(os.sep, "/")
        if self.host.startswith(("/", "@")):
            return "file://" + p
        return None

    def path_for(self, uri: str) -> str | None:
        """The absolute path of an MPD URI, or None for a stream or an unknown base."""
        if uri.startswith("file://"):
            return uri[len("file://") :]
        if uri.startswith("/"):
            return uri
        if "://" in uri or self.music_dir is None:
            return None
        return os.path.join(self.music_dir, *uri.split("/"))

    def track_of(self, uri: str, resolve: Resolve | None = None) -> Track | None:
        resolve = resolve or self.resolve
        path = self.path_for(uri)
        if path is None:
            return None
        if resolve is None:
            if not self._warned_unresolved:
                log.warning("mpd backend: no resolve() given: plays and skips cannot be matched to tracks")
                self._warned_unresolved = True
            return None
        try:
            return resolve(path)
        except Exception:
            log.exception("mpd backend: resolving %s failed", path)
            return None

    # commands ---------------------------------------------------------------------------------------

    def _command(self, fn: Callable[[MPDClient], Any]) -> Any:
        """Run ``fn(client)`` on the command connection (checked with ``ping``, reconnected)."""
        with self._lock:
            client = self._client
            if client is not None and client.connected:
                try:
                    client.ping()
                except MPDError:
                    client.close()
            if client is None:
                client = self._client = self.new_client()
            if not client.connected and not client.connect_with_backoff(max_wait=CONNECT_WAIT_S):
                raise BackendUnavailable(f"mpd backend: cannot reach MPD at {client.address}")
            try:
                return fn(client)
            except MPDConnectionError as exc:
                raise BackendUnavailable(f"mpd backend: {exc}") from None

    def add_uris(self, client: MPDClient, uris: Sequence[str]) -> int:
        """``add`` each URI in one command list; URIs MPD refuses are logged and left out."""
        added = 0
        pending = list(uris)
        while pending:
            try:
                client.command_list([("add", (uri,)) for uri in pending])
            except MPDCommandError as exc:
                if exc.command != "add":
                    raise
                added += exc.index
                log.warning("mpd backend: MPD cannot add %r: %s", pending[exc.index], exc.message)
                pending = pending[exc.index + 1 :]
                continue
            added += len(pending)
            break
        return added

    def _uris(self, tracks: Sequence[Track]) -> list[str]:
        uris = []
        for track in tracks:
            uri = self.uri_for(track.path)
            if uri is None:
                log.warning(
                    "mpd backend: %s is outside MPD's music_dir %s; left out", track.path, self.music_dir
                )
            else:
                uris.append(uri)
        return uris

    def play(self, tracks: list[Track], mode: str = "replace", record: Record | None = None) -> int:
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', got {mode!r}")
        uris = self._uris(tracks)

        def run(client: MPDClient) -> int:
            if mode == "replace":
                client.command("clear")
                start, stopped = 0, True
            else:
                status = client.status()
                start, stopped = int(status.get("playlistlength", 0)), status.get("state") == "stop"
            added = self.add_uris(client, uris)
            if added and stopped:
                client.command("play", start)
            return added

        added = self._command(run)
        if record is not None:
            self.record = record
            self._ensure_watcher()
        return added

    def now_playing(self) -> Track | None:
        song = self._command(
            lambda c: c.currentsong() if c.status().get("state") in ("play", "pause") else {}
        )
        return self.track_of(song["file"]) if song.get("file") else None

    def close(self) -> None:
        self._auto_stop.set()
        thread = self._auto_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._auto_thread = None
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # watching ---------------------------------------------------------------------------------------

    def _ensure_watcher(self) -> None:
        if self._watching or (self._auto_thread is not None and self._auto_thread.is_alive()):
            return
        self._auto_stop = threading.Event()
        self._auto_thread = threading.Thread(
            target=self._watch,
            args=(lambda event: self.record and self.record(event), self._auto_stop),
            name="recengine-mpd-watch",
            daemon=True,
        )
        self._auto_thread.start()

    def watch(
        self,
        record: Record | None,
        stop_event: threading.Event,
        *,
        topup: TopUp | None = None,
        topup_below: int | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        """Follow MPD until ``stop_event`` is set; see the module docstring. Never raises."""
        if self._auto_thread is not None and self._auto_thread.is_alive():  # an explicit watcher takes over
            self._auto_stop.set()
            self._auto_thread.join(timeout=5)
        self._watching += 1
        try:
            self._watch(record, stop_event, topup=topup, topup_below=topup_below, resolve=resolve)
        finally:
            self._watching -= 1

    def _watch(
        self,
        record: Record | None,
        stop_event: threading.Event,
        *,
        topup: TopUp | None = None,
        topup_below: int | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        below = self.topup_below if topup_below is None else topup_below
        client = self.new_client()
        tracker = PlayTracker(record, user=self.user, source=self.source)
        connect_backoff, error_backoff = Backoff(cap=self.backoff_cap), Backoff(cap=self.backoff_cap)
        state: dict[str, Any] = {"topped": None, "reconnected": False}
        while not stop_event.is_set():
            try:
                if not client.connected:
                    if not client.connect_with_backoff(stop_event, connect_backoff):
                        break
                    self.watcher_connected = True
                    state["reconnected"] = tracker.active
                status = client.status()
                song = client.currentsong() if status.get("state") in ("play", "pause") else {}
                self._observe(tracker, status, song, resolve, state)
                if topup is not None and below > 0:
                    self._maybe_topup(client, status, song, topup, below, state)
                wait = tracker.seconds_to_play()
                client.idle(
                    IDLE_SUBSYSTEMS, timeout=None if wait is None else wait + 0.05, stop_event=stop_event
                )
                error_backoff.reset()
            except MPDConnectionError as exc:
                log.warning("mpd watcher: %s; reconnecting", exc)
                self.watcher_connected = False
                tracker.tick(False)
                client.close()
            except Exception as exc:  # never take the caller's thread down
                if isinstance(exc, MPDCommandError):
                    log.warning("mpd watcher: %s", exc)
                else:
                    log.exception("mpd watcher: unexpected error; continuing")
                self.watcher_connected = False
                tracker.tick(False)
                client.close()
                stop_event.wait(error_backoff.next_delay())
        self.watcher_connected = False
        client.close()
        tracker.abandon()

    def _observe(
        self,
        tracker: PlayTracker,
        status: dict[str, str],
        song: dict[str, str],
        resolve: Resolve | None,
        state: dict[str, Any],
    ) -> None:
        reconnected = state["reconnected"]
        state["reconnected"] = False
        log.debug(
            "mpd watcher: %s %s elapsed=%s", status.get("state"), song.get("file"), status.get("elapsed")
        )
        mpd_state = status.get("state")
        uri = song.get("file")
        if mpd_state not in ("play", "pause") or not uri:
            self._end(tracker, reconnected)
            return
        playing = mpd_state == "play"
        key = (status.get("songid") or song.get("Id"), uri)
        elapsed = _float(status.get("elapsed")) or _float(status.get("time")) or 0.0
        duration = _float(status.get("duration")) or _float(song.get("duration")) or _float(song.get("Time"))
        same = tracker.active and (tracker.key == key or (reconnected and tracker.key[1] == uri))
        if same and duration and elapsed < 5.0 and tracker.position >= duration - min(2.5, 0.1 * duration):
            same = False  # the same queue entry again (repeat single): a new listen
            tracker.ended()
        if same:
            tracker.key = key
            tracker.tick(playing)
            return
        self._end(tracker, reconnected)
        tracker.start(
            self.track_of(uri, resolve), duration=duration, position=elapsed, playing=playing, key=key
        )

    @staticmethod
    def _end(tracker: PlayTracker, reconnected: bool) -> None:
        if not tracker.active:
            return
        if reconnected:  # recengine did not see how the previous song ended
            tracker.abandon()
        else:
            tracker.ended()

    def _maybe_topup(
        self,
        client: MPDClient,
        status: dict[str, str],
        song: dict[str, str],
        topup: TopUp,
        below: int,
        state: dict[str, Any],
    ) -> None:
        if status.get("state") not in ("play", "pause") or not song.get("file"):
            return
        key = (status.get("songid"), song.get("file"))
        try:
            pos = int(status.get("song", song.get("Pos", "0")))
            length = int(status.get("playlistlength", "0"))
        except ValueError:
            return
        remaining = length - pos - 1
        if remaining >= below or state["topped"] == key:
            return
        state["topped"] = key  # once per current song, even when topup() has nothing
        try:
            tracks = list(topup(below) or [])
        except Exception:
            log.exception("mpd watcher: topup() failed")
            return
        added = self.add_uris(client, self._uris(tracks))
        log.info("mpd watcher: %d left after the current song; appended %d", remaining, added)


@hookimpl
def addoption(spec):
    add = spec.add
    env = mpd_environment()  # the defaults: a setting in the config file wins
    add("plugins.mpd.host", "str", env.get("host", "localhost"),
        "MPD host name or address, or a unix socket path (default: $MPD_HOST)")
    add("plugins.mpd.port", "int", env.get("port", 6600), "MPD TCP port (default: $MPD_PORT)")
    add(
        "plugins.mpd.password",
        "str?",
        env.get("password"),
        "MPD password (use ${MPD_PASSWORD} to keep it out of the file; default: from MPD_HOST=password@host)",
        secret=True,
    )
    add(
        "plugins.mpd.music_dir",
        "path?",
        None,
        "MPD's music_directory as seen from here (default: the library folder, if there is one)",
    )
    add("plugins.mpd.user", "str", "default", "whose history MPD plays and skips go to")
    add(
        "plugins.mpd.topup_below",
        "int",
        2,
        "append recommendations when fewer tracks follow (0: never)",
        check=lambda v: None if v >= 0 else "must be 0 or more",
    )
    add(
        "plugins.mpd.timeout_s",
        "float",
        10.0,
        "connect and command time limit (s)",
        check=lambda v: None if v > 0 else "must be greater than 0",
    )


def from_config(config) -> MPDBackend:
    get = config.get if config is not None else (lambda key, default=None: default)
    music_dir = get("plugins.mpd.music_dir")
    folders = get("library.folders") or []
    if not music_dir and len(folders) == 1:
        music_dir = folders[0]
    return MPDBackend(
        get("plugins.mpd.host", "localhost"),
        get("plugins.mpd.port", 6600),
        password=get("plugins.mpd.password"),
        music_dir=music_dir,
        user=get("plugins.mpd.user", "default"),
        topup_below=get("plugins.mpd.topup_below", 2),
        timeout=get("plugins.mpd.timeout_s", 10.0),
    )


@hookimpl
def register_backends(register, config):
    register(from_config(config))
