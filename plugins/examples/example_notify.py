"""Example: react to what happens in recengine (library, index, history, playlists, daemon).

Event hooks are broadcast on the thread that committed the change; keep them quick and hand long
work to a thread of your own. An exception here is logged and does not stop recengine.
"""

import logging

import recengine

log = logging.getLogger("recengine.example_notify")


@recengine.hookimpl
def startup(engine):
    log.info("daemon started on %s", engine.config.data_dir)


@recengine.hookimpl
def track_added(track):
    log.info("new track analysed: %s", track.display)


@recengine.hookimpl
def track_changed(track):
    log.info("track changed or moved: %s", track.path)


@recengine.hookimpl
def track_removed(track):
    log.info("track gone (history kept): %s", track.path)


@recengine.hookimpl
def index_rebuilt(generation, size):
    log.info("index generation %d with %d tracks", generation, size)


@recengine.hookimpl
def history_recorded(event):
    log.info("%s %s track %d", event.user, event.kind, event.track_id)


@recengine.hookimpl
def playlist_written(name, path):
    log.info("playlist %s written to %s", name, path)


@recengine.hookimpl
def shutdown(engine):
    log.info("daemon stopping")
