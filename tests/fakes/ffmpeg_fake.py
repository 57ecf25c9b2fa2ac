"""A stand-in for ffmpeg in tests: logs every call, then runs the real ffmpeg or misbehaves.

Tests install it with :func:`install` (a copy named ``ffmpeg`` whose first line runs the test's own
Python), then point ``RECENGINE_FFMPEG`` or ``PATH`` at it. Settings come from the environment:

``FAKE_FFMPEG_REAL``    the real ffmpeg, exec'd for ordinary calls
``FAKE_FFMPEG_LOG``     a file receiving one JSON line per call: ``{"pid", "time", "argv"}``
``FAKE_FFMPEG_PIDDIR``  where misbehaving calls write ``<pid>.pid`` for themselves and their children

Misbehaviour is chosen by a marker anywhere in the arguments (put it in the file name):

``HANGME``   ignore SIGTERM, start a child that ignores it too, and sleep forever
``FLOODME``  write zero bytes to stdout forever (until killed or the pipe closes)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def install(bin_dir: Path, name: str = "ffmpeg") -> Path:
    """Copy this script into ``bin_dir`` as an executable called ``name``; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    target = bin_dir / name
    target.write_text(f"#!{sys.executable}\n" + Path(__file__).read_text())
    target.chmod(0o755)
    return target


def read_log(path: Path) -> list[dict]:
    """The calls logged so far (missing log: none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _log(argv: list[str]) -> None:
    log = os.environ.get("FAKE_FFMPEG_LOG")
    if not log:
        return
    line = json.dumps({"pid": os.getpid(), "time": time.time(), "argv": argv}) + "\n"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _write_pid() -> None:
    piddir = os.environ.get("FAKE_FFMPEG_PIDDIR")
    if piddir:
        Path(piddir, f"{os.getpid()}.pid").write_text(str(os.getpid()))


def _hang() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _write_pid()
    if os.fork() == 0:  # a grandchild of the caller, in the same process group
        _write_pid()
    while True:
        time.sleep(3600)


def _flood() -> None:
    _write_pid()
    block = bytes(1 << 16)
    try:
        while True:
            os.write(1, block)
    except OSError:  # the reader closed the pipe
        os._exit(1)


def main() -> None:
    argv = sys.argv
    _log(argv)
    joined = "\0".join(argv)
    if "HANGME" in joined:
        _hang()
    if "FLOODME" in joined:
        _flood()
    real = os.environ["FAKE_FFMPEG_REAL"]
    os.execv(real, [real, *argv[1:]])


if __name__ == "__main__":
    main()
