"""The ``recengine`` command line.

Exit codes: 0 ok, 1 failure, 2 usage or configuration error (checked where the arguments are
parsed and the config is read), 3 the daemon stopped because its catalog cannot be used. Errors are
one line; ``--debug`` adds the traceback. A file name that is not valid UTF-8 is printed as its bytes.
"""

from __future__ import annotations

import logging
import os
import sys

from recengine.analysis import ExecutorUnavailable
from recengine.analysis.decode import DecoderMissing
from recengine.catalog.db import CatalogError
from recengine.cli.errors import EXIT_FAILURE, EXIT_USAGE, CommandFailed, UsageError
from recengine.cli.parser import build_parser
from recengine.config import ConfigError
from recengine.index.generations import IndexDirectoryError
from recengine.models import NotInIndex

log = logging.getLogger("recengine")

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _setup_logging(args) -> None:
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    # journald stamps each line itself; anywhere else a line carries its time
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(level=level, format=stamp + "%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _run(args) -> int:
    from recengine.engine import Engine

    args.open_engine = Engine.open  # the one place the command line opens engines
    args.engine_on = Engine  # an engine on settings a command loaded itself (config check)
    if not args.needs_engine:
        return args.func(args)
    with Engine.open(args.config) as engine:
        if not (args.debug or args.quiet):
            logging.getLogger().setLevel(LOG_LEVELS[engine.config["log_level"]])
        return args.func(engine, args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.environ.get("RECENGINE_DEBUG"):
        args.debug = True
    _setup_logging(args)
    _print_names_as_bytes()
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted: everything analysed so far is kept; run the command again to continue",
              file=sys.stderr)
        return 130
    except (ConfigError, UsageError) as exc:
        return _fail(args, exc, EXIT_USAGE)
    except (DecoderMissing, CatalogError, CommandFailed, ExecutorUnavailable) as exc:
        return _fail(args, exc, EXIT_FAILURE)
    except (NotInIndex, IndexDirectoryError) as exc:  # IndexNotReady: no index yet for this library
        return _fail(args, exc, EXIT_FAILURE)
    except Exception as exc:
        return _fail(args, exc, EXIT_FAILURE, unexpected=True)


def _print_names_as_bytes() -> None:
    """A file name that is not valid UTF-8 is held as lone surrogates (``os.fsdecode``); printed, it
    gives back its bytes instead of raising UnicodeEncodeError, whatever the terminal's encoding."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")


def _fail(args, exc: BaseException, code: int, unexpected: bool = False) -> int:
    if args.debug:
        log.error("error", exc_info=exc)
    message = f"{type(exc).__name__}: {exc}" if unexpected else str(exc)
    print(f"recengine: error: {message}" + ("" if args.debug else "  (--debug for details)" if unexpected else ""),
          file=sys.stderr)
    return code
