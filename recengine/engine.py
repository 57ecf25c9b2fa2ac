"""An engine instance: validated config + its own plugin manager + the catalog.

``Engine.open()`` is the documented entry point for Python callers and the CLI alike::

    from recengine import Engine
    with Engine.open("config.yaml") as engine:
        engine.scan()
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from recengine import config as configmod
from recengine.analysis import ExecutorUnavailable, FeatureExecutor, FeaturePool, check_not_bootstrapping
from recengine.catalog import Catalog
from recengine.history import record_events
from recengine.index import IndexSettings, LibraryIndex, extractor_infos
from recengine.library import Scanner, ScanSettings
from recengine.models import HistoryEvent, TrackNotFound
from recengine.plugin.boot import load_settings
from recengine.plugin.events import EventDispatcher
from recengine.plugin.manager import PluginSet
from recengine.plugin.registry import Registry, collect
from recengine.recommend.ranking import Recommender, Request
from recengine.recommend.similarity import Similarity
from recengine.scrobble import ListenBrainzService
from recengine.sources import SubsonicSync, parse_sources

log = logging.getLogger(__name__)


class Engine:
    """One recengine: config, plugins and catalog, with the operations built on them."""

    def __init__(self, config: configmod.Config, plugins: PluginSet, *, catalog: Catalog | None = None):
        self.config = config
        self.plugins = plugins
        self._catalog = catalog

    @classmethod
    def open(cls, config_path: str | os.PathLike[str] | None = None, *, raw: dict[str, Any] | None = None,
             env: Mapping[str, str] | None = None, entrypoints: bool = True, **overrides: Any) -> Engine:
        """Open an engine from a config file (``None``: the config location rules of
        :func:`recengine.config.loader.locate_config`: ``$RECENGINE_CONFIG``, the XDG config, ``/etc/recengine``,
        else the built-in defaults), or from ``raw`` config data. ``overrides`` set dotted keys."""
        path = configmod.config_path(config_path, env) if raw is None else (Path(config_path) if config_path else None)
        config, plugins = load_settings(path, raw, env=env, entrypoints=entrypoints)
        for key, value in overrides.items():
            config.values[key.replace("__", ".")] = value
        engine = cls(config, plugins)
        engine.recipes  # noqa: B018 - a recipe mistake is a config error when the engine opens
        return engine

    # parts ---------------------------------------------------------------------------------------

    @property
    def pm(self):
        return self.plugins.pm

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.config.data_dir / "catalog.db")
        return self._catalog

    @functools.cached_property
    def extractors(self) -> Registry:
        return collect(self.pm, "extractors", self.config)

    @functools.cached_property
    def scorers(self) -> Registry:
        return collect(self.pm, "scorers", self.config)

    @functools.cached_property
    def backends(self) -> Registry:
        return collect(self.pm, "backends", self.config)

    @functools.cached_property
    def writers(self) -> Registry:
        return collect(self.pm, "playlist_writers", self.config)

    def extractor_versions(self) -> dict[str, int]:
        return {e.name: e.version for e in self.extractors}

    def deep_extractors(self) -> set[str]:
        """The extractors that declare ``deep`` (musicnn): they run in the deep pass, after the fast one."""
        return {e.name for e in self.extractors if getattr(e, "deep", False)}

    def passes(self) -> dict[str, Any]:
        """How far the two featurising passes are over the present tracks: ``{"fast": n,
        "deep": {extractor: {"done": d, "pending": n - d}}}`` (``deep`` empty without deep extractors)."""
        versions, deep = self.extractor_versions(), self.deep_extractors()
        fast = {n: v for n, v in versions.items() if n not in deep}
        done, per = self.catalog.coverage(fast, {n: versions[n] for n in deep})
        return {"fast": done, "deep": {n: {"done": d, "pending": done - d} for n, d in sorted(per.items())}}

    @functools.cached_property
    def events(self) -> EventDispatcher:
        return EventDispatcher(self.pm, deadline_s=self.config["hook_deadline_s"])

    def emit(self, hook: str, **kwargs: Any) -> None:
        """Broadcast an event hook: every implementation isolated, the whole call bounded by
        ``hook_deadline_s`` (:mod:`recengine.plugin.events`)."""
        self.events.emit(hook, **kwargs)

    @functools.cached_property
    def index(self) -> LibraryIndex:
        """The similarity index, opened: the newest generation made with today's extractors and
        weights is loaded, or none (queries raise IndexNotReady until a scan or build makes one)."""
        index = LibraryIndex(self.catalog, IndexSettings.from_config(self.config), extractor_infos(self.extractors),
                             data_dir=self.config.data_dir, emit=self.emit)
        index.open()
        return index

    @functools.cached_property
    def recipes(self):
        """The playlist recipes and outputs of the config, parsed once (:class:`recengine.playlists.Recipes`)."""
        from recengine.playlists import Recipes

        return Recipes.from_config(self.config, playlist_writers=set(self.writers.names()),
                                   strategies=set(self.scorers.names()))

    @functools.cached_property
    def playlists(self):
        """The playlists made from the recipes (:class:`recengine.playlists.Playlists`)."""
        from recengine.playlists import Playlists

        return Playlists(self.recipes, self.catalog, self.writers, self.emit,
                         recommend=lambda request: self.recommender.recommend(request),
                         walk=lambda a, b, n, filters: self.similarity.path(a, b, n, filters),
                         resolve=self.resolve)

    @functools.cached_property
    def player(self):
        """Playback through the backends, plays and skips recorded (:class:`recengine.playback.player.Player`)."""
        from recengine.playback.player import Player

        return Player(self.backends, lambda: self.pm.hook.choose_backend(config=self.config, backends=self.backends.items),
                      configured=self.config["backend"], record_events=self.record_events,
                      track_by_path=self.catalog.track_by_path, recipes=self.recipes,
                      tracks_for=self.playlists.tracks_for, recommend=lambda user, n: self.recommend(user, n))

    # operations ----------------------------------------------------------------------------------

    def record(self, user: str, track, kind: str, *, at: float | None = None, listened_s: float | None = None,
               source: str = "api"):
        """Record a play, skip, like, dislike or unlike of ``track`` (id or path) by ``user``;
        durable when this returns."""
        tid = self.resolve(track).track_id if not isinstance(track, int) else track
        kw = {"at": at} if at is not None else {}
        return self.record_events([HistoryEvent(user, tid, kind, listened_s=listened_s, source=source, **kw)])[0]

    def record_events(self, events: Iterable[HistoryEvent]) -> list[HistoryEvent]:
        """Validate and commit history events (durable when this returns), then tell the plugins."""
        return record_events(self.catalog, self.emit, events)

    @functools.cached_property
    def recommender(self) -> Recommender:
        return Recommender(self.catalog, self.index, self.scorers, self.config)

    def recommend(self, user: str = "default", n: int = 20, **kwargs: Any):
        """Personal recommendations for ``user`` (see :class:`recengine.recommend.ranking.Request`)."""
        seeds = [self.resolve(s).track_id for s in kwargs.pop("seeds", [])]
        return self.recommender.recommend(Request(user=user, n=n, seeds=seeds, **kwargs))

    def scanner(self, *, progress: bool | None = None, executor: str | None = None,
                scheduler: str | None = None) -> Scanner:
        """The library scanner on this engine's catalog: reconcile, then featurise in worker processes
        built from this engine's config (``progress``: a progress bar, default when on a terminal).
        ``executor`` (``local`` or ``dask``) and ``scheduler`` override ``scan.executor`` and
        ``scan.dask.scheduler``."""
        check_not_bootstrapping()  # before the writer lock, which the parent of a bootstrapping worker holds
        make_executor = self._executor_factory(executor, scheduler)
        return Scanner(self.catalog, ScanSettings.from_config(self.config), self.extractor_versions(),
                       make_executor, self.emit, progress=progress, deep=self.deep_extractors(),
                       ignore_dirs=[output.dir for output in self.playlists.outputs.values()])

    def _executor_factory(self, kind: str | None, scheduler: str | None) -> Callable[[int], FeatureExecutor]:
        """``workers -> FeatureExecutor`` for ``scan.executor`` (or ``kind``): the local pool, or the
        Dask executor (imported only then; checked now, so a missing extra stops the scan before it starts)."""
        config = self.config
        source = None if config.source == "<defaults>" else config.source
        kind = kind or config["scan.executor"]
        if kind not in ("local", "dask"):
            raise ValueError(f"executor: expected local or dask, got {kind!r}")
        if kind == "local":
            return lambda workers: FeaturePool.for_config(source, config.raw, workers)
        scheduler = scheduler or config["scan.dask.scheduler"]
        if not scheduler:
            raise config.error("scan.dask.scheduler", "scan.executor is dask, so the scheduler's address is "
                               "needed (e.g. tcp://host:8786; or --scheduler)")
        try:
            from recengine.analysis.dask_executor import DaskExecutor
        except ImportError as exc:
            raise ExecutorUnavailable(f"scan.executor is dask, but {exc.name or 'dask.distributed'} is not installed: "
                                      "pip install 'recengine[dask]'") from None
        return lambda workers: DaskExecutor.for_config(
            source, config.raw, scheduler, path_map=config["scan.dask.path_map"],
            connect_timeout_s=config["scan.dask.connect_timeout_s"])

    def scan(self, *, update_index: bool = True, **kwargs: Any):
        """Reconcile the library folders with the catalog and featurise what is new or changed
        (the fast pass); then bring the index up to date (built if there is none, rebuilt per the
        index's rule), so those tracks are searchable; then the deep pass (deep extractors only)
        and the index again. ``executor`` and ``scheduler``: as for :meth:`scanner`."""
        def searchable(report) -> None:
            if update_index:
                self.index.catch_up(report.featurised + report.removed + report.moved)

        report = self.scanner(progress=kwargs.pop("progress", None), executor=kwargs.pop("executor", None),
                              scheduler=kwargs.pop("scheduler", None)).run(searchable=searchable, **kwargs)
        if update_index and not kwargs.get("featurise", True):
            searchable(report)
        if update_index and report.deep_featurised:
            self.index.catch_up(report.deep_featurised)
        if report.featurised and self.catalog.pending_listen_count():
            self.listenbrainz.match_pending()  # scrobbled listens whose files just arrived
        return report

    def resolve(self, ref: str | int | os.PathLike[str]):
        """A track from its id or its file path (absolute or relative to the working folder)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and not Path(ref).exists()):
            track = self.catalog.track(int(ref))
        else:
            track = self.catalog.track_by_path(Path(ref).absolute())
        if track is None:
            raise TrackNotFound(f"{ref}: not in the catalog (run `recengine scan` first?)")
        return track

    @functools.cached_property
    def similarity(self) -> Similarity:
        return Similarity(self.catalog, self.index, local_scaling_k=self.config["similarity.local_scaling_k"],
                          candidates=self.config["similarity.candidates"])

    def similar(self, seeds, n: int = 10, filters=None):
        """Tracks like ``seeds`` (ids or paths), best first, as Recommendations."""
        ids = [self.resolve(s).track_id for s in seeds]
        return self.similarity.similar(ids, n, filters)

    def path(self, a, b, n: int = 12, filters=None):
        """A playlist of ``n`` tracks walking from ``a`` to ``b`` (ids or paths)."""
        return self.similarity.path(self.resolve(a).track_id, self.resolve(b).track_id, n, filters)

    @functools.cached_property
    def listenbrainz(self) -> ListenBrainzService:
        """The ListenBrainz-compatible submission API's logic (tokens, listens, feedback)."""
        return ListenBrainzService(self.catalog, self.record_events)

    def source_syncs(self) -> list[SubsonicSync]:
        """One sync per entry of ``sources:`` (parsed now: an unset ``${VAR}`` there breaks nothing else)."""
        def tracks_of(recipe: str) -> list:
            return [r.track for r in self.playlists.tracks_for(self.playlists.get(recipe))]

        return [SubsonicSync(s, self.catalog, self.record_events, tracks_of) for s in parse_sources(self.config)]

    def close(self) -> None:
        index = self.__dict__.pop("index", None)
        if index is not None:
            index.close()
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
