"""Example drop-in reacting to library events: logs each analysed track and written playlist.

Event hooks are broadcast on the thread that committed the change; keep them quick.
"""

import logging

import recengine

log = logging.getLogger("recengine.example_notify")


@recengine.hookimpl
def track_added(track):
    log.info("new track analysed: %s", track.display)


@recengine.hookimpl
def playlist_written(name, path):
    log.info("playlist %s written to %s", name, path)
