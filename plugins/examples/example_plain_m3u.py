"""Example playlist writer: plain M3U (one path per line) for players that want nothing else.

A writer renders bytes; recengine writes them atomically, only when they changed, and only over
files carrying its marker (here a first comment line), so ``marker_of`` must read it back.
Use it in a recipe with ``writers: [plain_m3u]``.
"""

from pathlib import Path

import recengine


class PlainM3U:
    name = "plain_m3u"
    suffix = ".m3u"

    def render(self, playlist, profile, playlist_path=None):
        lines = [f"# recengine {playlist.marker}"] + [str(entry.path) for entry in playlist.entries]
        return ("\n".join(lines) + "\n").encode("utf-8")

    def marker_of(self, path):
        with open(Path(path), encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip()
        return first.split(" ", 2)[2] if first.startswith("# recengine ") else None


@recengine.hookimpl
def register_playlist_writers(register):
    register(PlainM3U())
