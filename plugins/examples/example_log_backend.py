"""Example playback backend: "plays" by appending the tracks to a text file.

A backend gets the tracks, a mode (replace or append) and a ``record`` callback that takes a
``recengine.HistoryEvent``: real backends call it for plays and skips. Pick it with
``recengine play PLAYLIST --backend log`` or ``backend: log`` in config.yaml.
"""

import time

import recengine


@recengine.hookimpl
def addoption(spec):
    spec.add("plugins.example_log_backend.file", "path", "played.txt", "where to append what was played")


class LogBackend:
    name = "log"

    def __init__(self, file):
        self.file = file

    def play(self, tracks, mode="replace", record=None):
        with open(self.file, "w" if mode == "replace" else "a", encoding="utf-8") as fh:
            for track in tracks:
                fh.write(f"{track.path}\n")
                if record is not None:
                    record(recengine.HistoryEvent("default", track.track_id, "play", at=time.time(), source="log"))
        return len(tracks)


@recengine.hookimpl
def register_backends(register, config):
    register(LogBackend(config.get("plugins.example_log_backend.file")))
