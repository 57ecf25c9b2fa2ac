"""The argument parser: every command, its options, and argument types checked as they are parsed."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from recengine import __version__
from recengine.cli.admin import cmd_config, cmd_doctor, cmd_service
from recengine.cli.arguments import (
    IntermixedParser,
    count,
    scheduler_address,
    seconds,
    strategy_weight,
    tag_match,
)
from recengine.cli.evaluate import cmd_evaluate, days
from recengine.cli.library import cmd_daemon, cmd_failures, cmd_scan, cmd_status, run_demo
from recengine.cli.models import cmd_models
from recengine.cli.playing import cmd_play, cmd_playlists
from recengine.cli.queries import cmd_history, cmd_path, cmd_recommend, cmd_similar
from recengine.cli.serve import cmd_serve
from recengine.cli.setup import cmd_plugins
from recengine.cli.sources import cmd_sync
from recengine.cli.users import cmd_users


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recengine", description="Music recommendations beside your media server.")
    parser.add_argument("--version", action="version", version=f"recengine {__version__}")
    parser.add_argument("--config", "-c", help="config file (default: $RECENGINE_CONFIG, else "
                        "~/.config/recengine/config.yaml, else /etc/recengine/config.yaml; `config path` tells)")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks on errors")
    parser.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=IntermixedParser)
    sub.required = True

    def command(name: str, func: Callable, help: str, *, engine: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func, needs_engine=engine)
        return p

    p = command("scan", cmd_scan, "reconcile the library folders with the catalog and analyse new or changed files")
    p.add_argument("--retry-failed", action="store_true", help="retry files in the failure ledger")
    p.add_argument("--confirm-mass-delete", action="store_true",
                   help="allow removing more than scan.mass_delete_ratio of a folder's tracks")
    p.add_argument("--workers", type=count, default=None, help="worker processes (default: scan.workers)")
    p.add_argument("--no-featurise", action="store_true", help="only reconcile; analyse nothing")
    p.add_argument("--executor", choices=("local", "dask"), default=None,
                   help="where files are analysed: worker processes here, or a Dask cluster (default: scan.executor)")
    p.add_argument("--scheduler", type=scheduler_address, metavar="ADDRESS",
                   help="the Dask scheduler, e.g. tcp://host:8786 (implies --executor dask; default: "
                        "scan.dask.scheduler)")
    p.add_argument("--demo-if-missing", action="store_true",
                   help="when no library folder exists yet, run `recengine demo` instead of failing")

    def add_filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="JSON output: path, artist, title, distance, score")
        p.add_argument("--exclude-artist", action="append", metavar="NAME", help="leave out this artist (repeatable)")
        p.add_argument("--exclude-album", action="append", metavar="NAME", help="leave out this album (repeatable)")
        p.add_argument("--exclude-genre", action="append", metavar="TEXT", help="leave out genres containing TEXT")
        p.add_argument("--min-duration", type=seconds, metavar="S", help="shortest track, seconds")
        p.add_argument("--max-duration", type=seconds, metavar="S", help="longest track, seconds")
        p.add_argument("--tag", action="append", type=tag_match, metavar="FIELD=TEXT", help="only tracks whose tag contains TEXT")

    p = command("similar", cmd_similar, "tracks that sound like the given tracks (paths or track ids)")
    p.add_argument("tracks", nargs="+", metavar="TRACK")
    p.add_argument("-n", type=count, default=10, help="how many (default 10)")
    add_filters(p)

    p = command("path", cmd_path, "a playlist walking from one track to another")
    p.add_argument("start", metavar="A")
    p.add_argument("end", metavar="B")
    p.add_argument("-n", type=count, default=12, help="length including A and B (default 12)")
    add_filters(p)

    p = command("history", cmd_history, "record plays, skips, likes and dislikes, or import a listening history")
    p.add_argument("action", choices=("play", "skip", "like", "dislike", "unlike", "import"))
    p.add_argument("tracks", nargs="*", metavar="TRACK", help="track paths or ids (import: history files)")
    p.add_argument("--user", "-u", default="default", help="listener (default: default)")
    p.add_argument("--listened", type=seconds, metavar="S", help="seconds listened (play/skip)")
    p.add_argument("--format", choices=("listenbrainz", "lastfm", "lastfm-loved", "scrobbler"),
                   help="import: file format (default: detect)")

    p = command("recommend", cmd_recommend, "personal recommendations from history, likes and dislikes")
    p.add_argument("--user", "-u", default="default", help="listener (default: default)")
    p.add_argument("-n", type=count, default=20, help="how many (default 20)")
    p.add_argument("--seed", action="append", metavar="TRACK", help="steer toward this track (repeatable)")
    p.add_argument("--strategy", action="append", type=strategy_weight, metavar="NAME=WEIGHT",
                   help="scoring strategies and weights (default taste=1, diversity=0.5, discovery=0.1)")
    add_filters(p)

    p = command("evaluate", cmd_evaluate, "how well recengine hears your library and would have served you, "
                "and how healthy the playlists are (read-only)")
    p.add_argument("--user", "-u", default="default", help="listener (default: default)")
    p.add_argument("--json", action="store_true", help="JSON output: the same numbers")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report with charts")
    p.add_argument("--since", type=days, metavar="DAYS",
                   help="the plays and likes of the last DAYS days are the truth (default: the newest 20%% "
                        "of the events, at least a day)")

    p = command("playlists", cmd_playlists, "list the playlist recipes or refresh their files")
    p.add_argument("action", choices=("list", "refresh"))
    p.add_argument("names", nargs="*", metavar="NAME", help="refresh only these")

    command("daemon", cmd_daemon, "watch the library and keep the index and playlists fresh (foreground)")
    p = command("serve", cmd_serve, "serve the HTTP API and the web page in the foreground (Ctrl-C to stop)")
    p.add_argument("--host", help="address to listen on (default: http.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: http.port, 8741; 0: any free one)")
    p = command("status", cmd_status, "whether the daemon runs and what it is doing")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = command("play", cmd_play, "play a playlist recipe through a playback backend; plays and skips are recorded")
    p.add_argument("playlist", metavar="PLAYLIST", help="a recipe name from config.yaml")
    p.add_argument("--backend", "-b", help="mpd, local, command, null or a plugin's (default: backend:)")
    p.add_argument("--append", action="store_true", help="add to the player's queue instead of replacing it")
    p.add_argument("--watch", action="store_true",
                   help="stay: record plays and skips and keep the queue topped up (Ctrl-C to stop)")
    p.add_argument("--topup-below", type=count, metavar="N", help="top up when fewer than N tracks remain")
    p.add_argument("--user", "-u", default="default", help="listener for top-up recommendations")

    p = command("models", cmd_models, "install (fetch and convert) or list the neural models", engine=False)
    p.add_argument("action", choices=("install", "list"))
    p = command("users", cmd_users, "make a user's scrobble token (for the ListenBrainz-compatible API)")
    p.add_argument("action", choices=("token",))
    p.add_argument("user", metavar="USER")
    p = command("sync", cmd_sync, "pull likes and plays from the media servers under sources:, push playlists there")
    p.add_argument("--source", action="append", metavar="NAME", help="only this source (repeatable)")
    p = command("failures", cmd_failures, "list files that could not be analysed, with the reason")
    p.add_argument("--json", action="store_true", help="JSON output")

    p = command("plugins", cmd_plugins, "list plugins with their source, version, hooks and load errors",
                engine=False)
    p.add_argument("--json", action="store_true", help="JSON output")

    p = command("config", cmd_config, "check the config file, show the effective configuration, write a "
                "commented one (init) or tell which file is in use (path)", engine=False)
    p.add_argument("action", choices=("check", "show", "init", "path"))
    p.add_argument("--library", action="append", metavar="DIR",
                   help="init: this music folder instead of ~/Music (repeatable)")

    p = command("doctor", cmd_doctor, "check the set-up, one line per check; exit 1 if any fails", engine=False)

    p = command("service", cmd_service, "install the systemd unit for `recengine daemon`", engine=False)
    p.add_argument("action", choices=("install",))
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--user", action="store_true", help="a user unit in ~/.config/systemd/user")
    kind.add_argument("--system", action="store_true",
                      help="a system unit in /etc/systemd/system, run as the recengine user (needs root)")
    p.add_argument("--print", action="store_true", help="print the unit instead of writing it")

    p = command("demo", run_demo, "generate a small synthetic library, analyse it and show similar tracks",
                engine=False)
    p.add_argument("--dir", help="where to put the demo library and data (default: a temp folder)")
    p.add_argument("--tracks", type=count, default=6, help="tracks per style (default 6)")
    return parser
