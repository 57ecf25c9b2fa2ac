"""Every hook recengine calls, declared and documented in one place.

Plugins implement hooks with ``@recengine.hookimpl`` and are found, in this order: built-ins
(``recengine.default_plugins``), entry points in the group ``recengine``, then ``.py`` files and
packages in the configured plugin folders (default ``plugins/``). See :mod:`recengine.plugin.manager`.

Conventions (as in pytest and simonw/llm):

- Hooks are always called with keyword arguments; an implementation may accept any subset of the
  arguments named here, so new arguments can be added without breaking plugins.
- ``register_*`` hooks receive a ``register`` callback (and, if they ask for it, the validated
  ``config``, so a plugin can build its objects from its own settings). The host checks what is
  registered (the protocol in ``recengine.plugin.registry``), rejects duplicate names, and records which
  plugin owns it.
- Decisions ("who decodes this file?") are ``firstresult`` hooks whose built-in is ``trylast``, so a
  plugin's implementation runs first and wins by returning something other than ``None``.
- Every hook is called through pluggy, so ``@hookimpl(wrapper=True)`` implementations see every
  call (timing, logging). Each implementation runs inside a guard (:mod:`recengine.plugin.isolation`):
  one that raises is logged once with its plugin's name and file and answers ``None``; the others
  still run, and a ``firstresult`` hook falls through to the next implementation.
- Event hooks (``track_added``, ``index_rebuilt``, ...) are broadcast, in order, on a dispatcher
  thread; the caller waits at most ``hook_deadline_s`` (:mod:`recengine.plugin.events`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from recengine.config import Config, OptionSpec
    from recengine.models import DecodedAudio, HistoryEvent, Track

PROJECT = "recengine"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- configuration ----------------------------------------------------------------------------


@hookspec(historic=True)
def addoption(spec: OptionSpec) -> None:
    """Declare the configuration keys this plugin reads.

    Called once per plugin manager, on the main thread, before the config file is validated;
    historic, so a plugin registered later is called too. Keys are declared under
    ``plugins.<name>`` and validated like the core keys: wrong types and unknown keys are errors
    naming the dotted key.

    :param spec: call ``spec.add("plugins.example.half_life_days", "float", 30.0, "help text")``.

    Example::

        @recengine.hookimpl
        def addoption(spec):
            spec.add("plugins.example_recency.half_life_days", "float", 30.0,
                     "how fast old plays fade")
    """


@hookspec(historic=True)
def configure(config: Config) -> None:
    """Called once with the validated configuration, on the main thread, before any work starts.

    Historic: plugins registered after configuration are called with it too. Read your own
    section with ``config["plugins.<name>.<key>"]`` (the default declared in ``addoption`` applies).
    """


# --- registries ---------------------------------------------------------------------------------


@hookspec
def register_extractors(register: Callable[[Any], None], config: Config) -> None:
    """Register feature extractors by calling ``register(extractor)`` once per extractor.

    Called when a plugin manager is set up, in the main process and in every scan worker. An
    extractor (:class:`recengine.plugin.protocols.Extractor`) has ``name`` (str, unique),
    ``version`` (int: bump it when the output changes and only this extractor is re-run on the
    library), ``dim`` (int: length of the output) and ``extract(samples, sr) -> numpy.ndarray``
    where ``samples`` is mono float32 in [-1, 1] at rate ``sr``. The output must be finite and of
    length ``dim``; anything else is a logged failure of that extractor for that file, never of the scan.

    Optional members, for extractors that load a model or want other audio:

    - ``setup()``: called once in each worker process, before the extractor's first use (never
      in the main process); load weights there. If it raises, the extractor fails for every file
      that worker handles, with the error in the log.
    - ``sample_rate`` (int): the audio is handed over at this rate instead of ``analysis.sample_rate``:
      the same analysis windows, resampled (``scipy.signal.resample_poly``) when the rate is lower,
      decoded again at that rate when it is higher; once per track and rate, however many
      extractors share it.
    - ``extract_batch(items) -> list[numpy.ndarray]``: called instead of ``extract`` once per worker
      batch with ``[(samples, sr), ...]``, one vector per item, in order.
    - ``weight`` (float, default 1.0): the block's share of the similarity vector.

    Called in: the main thread of the main process and of each worker process.
    """


@hookspec
def register_scorers(register: Callable[[Any], None], config: Config) -> None:
    """Register scoring strategies by calling ``register(scorer)``.

    A scorer has ``name`` and ``score(candidates, profile, context) -> list[tuple[float, str]]``:
    one ``(score in [0, 1], reason)`` per candidate, in order. Recipes combine scorers by name
    with weights. Called in the main thread when the plugin manager is set up.
    """


@hookspec
def register_backends(register: Callable[[Any], None], config: Config) -> None:
    """Register playback backends by calling ``register(backend)``.

    A backend has ``name`` and ``play(tracks, mode, record)`` where ``tracks`` is a list of
    :class:`recengine.models.Track`, ``mode`` is ``"replace"`` or ``"append"`` and ``record`` is a
    callback taking a :class:`recengine.models.HistoryEvent` (plays and skips flow back through
    it). Called in the main thread when the plugin manager is set up.
    """


@hookspec
def register_playlist_writers(register: Callable[[Any], None], config: Config) -> None:
    """Register playlist writers by calling ``register(writer)``.

    A writer has ``name`` (e.g. ``"m3u8"``), ``suffix`` (e.g. ``".m3u8"``),
    ``render(playlist, profile, playlist_path) -> bytes`` (a :class:`recengine.models.Playlist`, a
    :class:`recengine.models.PathProfile`, and the file the bytes will be written to, for relative
    paths) and ``marker_of(path) -> str | None`` (the ownership marker in an existing file, so
    recengine never overwrites a playlist it did not write). recengine writes the bytes atomically
    and only when they changed. Called in the main thread when the plugin manager is set up.
    """


@hookspec
def register_routes(register: Callable[..., None], config: Config) -> None:
    """Add HTTP endpoints or pages to recengine's server (``recengine serve`` and the daemon's).

    Call ``register(path, endpoint, methods=("GET",), summary="")`` for each route. ``endpoint``
    is a Starlette endpoint (``def endpoint(request) -> Response``; a plain function runs on the
    server's thread pool); ``request.app.state.web.engine`` is the engine. Paths under ``/api/``
    need the API token like every API call; a ``summary`` lists the route in the OpenAPI document.
    Called once, in the main thread, when the server starts; a plugin whose hook raises is logged
    and its routes are left out.
    """


# --- decisions ----------------------------------------------------------------------------------


@hookspec(firstresult=True)
def load_audio(path: Path, config: Config) -> DecodedAudio | None:
    """Decode ``path`` into analysis samples, or return ``None`` to let the next decoder try.

    firstresult: the first non-``None`` result is used. The built-in ffmpeg decoder is
    ``trylast``; a plugin decoder runs before it. Raise ``recengine.analysis.decode.DecodeFailure``
    with a reason class from ``recengine.models.FAILURE_REASONS`` for a file that cannot be
    decoded. Any other exception is the plugin's fault, not the file's: it is reported once per
    plugin and the next decoder (in the end the built-in one) decodes the file. The samples are
    handed to extractors at ``analysis.sample_rate`` (an extractor with its own ``sample_rate``
    gets them resampled).

    Called in: a scan worker process, one file at a time. Must be bounded in time and memory.
    """


@hookspec(firstresult=True)
def choose_backend(config: Config, backends: dict[str, Any]) -> Any | None:
    """Pick the playback backend when none is named on the command line.

    firstresult; the built-in (``trylast``) reads the ``backend:`` config key.
    Called in: the main thread.
    """


# --- events -------------------------------------------------------------------------------------


@hookspec
def track_added(track: Track) -> None:
    """A new track was featurised and committed to the catalog.

    Broadcast, called after the commit, on the thread that committed it (the scan or daemon
    thread, never a worker process). Keep it quick; hand long work to your own thread.
    """


@hookspec
def track_changed(track: Track) -> None:
    """An existing track was re-featurised (its file changed) or moved/renamed (same ``track_id``).

    Broadcast, called after the commit, on the committing thread.
    """


@hookspec
def track_removed(track: Track) -> None:
    """A track's file is gone (soft delete: its history is kept).

    Broadcast, called after the commit on the committing thread (scan or daemon loop). Not called
    for files under an unavailable (unmounted) folder: those are not gone.
    """


@hookspec
def index_rebuilt(generation: int, size: int) -> None:
    """A new index generation was built and swapped in; ``size`` tracks are in it.

    Broadcast, called on the index builder thread after the swap.
    """


@hookspec
def history_recorded(event: HistoryEvent) -> None:
    """A history event (play, skip, like, dislike, unlike) was committed. Broadcast.

    Called on the thread that recorded it (CLI, API caller or a backend's watcher thread).
    """


@hookspec
def playlist_written(name: str, path: Path) -> None:
    """A playlist file was (re)written at ``path``; e.g. ask a media server to rescan.

    Broadcast. Called after the file was atomically replaced (never for unchanged content), on the
    thread that refreshed the playlists (CLI main thread or the daemon loop).
    """


@hookspec
def startup(engine: Any) -> None:
    """The daemon has opened the catalog and is about to reconcile and watch.

    Broadcast, called once on the daemon's main thread. ``engine`` is the
    :class:`recengine.engine.Engine`: keep it to record history or query from your own threads.
    """


@hookspec
def shutdown(engine: Any) -> None:
    """The daemon is stopping (SIGTERM/SIGINT): the watcher and workers are already stopped.

    Broadcast, called once on the daemon's main thread. Must return within a second or two:
    the daemon promises to stop within 10 s.
    """
