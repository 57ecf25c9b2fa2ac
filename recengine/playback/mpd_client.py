"""A small client for the MPD protocol (https://mpd.readthedocs.io/en/latest/protocol.html).

Written here rather than depending on python-mpd2: recengine needs about ten commands, an
``idle`` that can be interrupted by a stop flag or a deadline without losing bytes (python-mpd2's
blocking ``idle()`` cannot do both on one socket without its ``send_idle``/``fetch_idle`` split
and a second thread), and reconnects that never raise into a daemon thread. The protocol is a
line-oriented text protocol and fits in this file.

Protocol summary (as implemented):

- On connect MPD sends ``OK MPD <version>``.
- A command is one line: the name, then arguments in double quotes with ``\\`` and ``"``
  backslash-escaped (:func:`quote`). Arguments must not contain a newline.
- A response is ``key: value`` lines ended by ``OK``, or a single error line
  ``ACK [<code>@<index in command list>] {<command>} <message>`` (raised as
  :class:`MPDCommandError`).
- ``command_list_ok_begin`` ... ``command_list_end`` runs several commands; each one's response
  ends with ``list_OK`` and the whole with ``OK``. An ACK stops the list at that command; its
  ``index`` says which one failed (:meth:`MPDClient.command_list`).
- ``idle [subsystems...]`` blocks until something changes (``changed: player`` lines, then
  ``OK``); ``noidle`` cancels it (MPD answers with whatever changed, then ``OK``). A client in
  idle is exempt from MPD's ``connection_timeout``. :meth:`MPDClient.idle` waits in short reads so
  that it can notice a stop flag or a deadline, and then sends ``noidle``.
- ``host`` starting with ``/`` or ``@`` is a unix socket (``@`` = Linux abstract socket), as in
  ``MPD_HOST``; :func:`mpd_environment` reads ``MPD_HOST`` and ``MPD_PORT`` as mpc does.

Errors: every socket failure, timeout or closed connection is :class:`MPDConnectionError` and
leaves the client disconnected (the next call must :meth:`~MPDClient.connect` again, or use
:meth:`~MPDClient.connect_with_backoff`, which retries with capped exponential backoff until it
connects or a stop flag is set, and never raises).

Not thread-safe: use one client per thread (an ``idle`` ties up its connection anyway).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PORT = 6600
ENCODING = "utf-8"
_MAX_LINE = 1 << 20  # a longer line than this is a protocol error, not a reason to grow forever


class MPDError(Exception):
    """Base class of MPD client errors."""


class MPDConnectionError(MPDError):
    """Cannot connect, or the connection broke (timeout, reset, closed by MPD)."""


class MPDProtocolError(MPDConnectionError):
    """MPD sent something this client does not understand; the connection is dropped."""


class MPDCommandError(MPDError):
    """MPD answered ``ACK [code@index] {command} message``. The connection stays usable."""

    # ACK error codes from MPD's protocol documentation
    NOT_LIST, ARG, PASSWORD, PERMISSION, UNKNOWN = 1, 2, 3, 4, 5
    NO_EXIST, PLAYLIST_MAX, SYSTEM, PLAYLIST_LOAD, UPDATE_ALREADY = 50, 51, 52, 53, 54
    PLAYER_SYNC, EXIST = 55, 56

    def __init__(self, line: str):
        self.line = line
        self.code, self.index, self.command, self.message = _parse_ack(line)
        super().__init__(f"MPD error {self.code} in {self.command or '?'}: {self.message}")


def _parse_ack(line: str) -> tuple[int, int, str, str]:
    # ACK [50@0] {add} No such directory
    try:
        head, _, rest = line[len("ACK [") :].partition("]")
        code, _, index = head.partition("@")
        rest = rest.strip()
        command = ""
        if rest.startswith("{"):
            command, _, rest = rest[1:].partition("}")
        return int(code), int(index or 0), command, rest.strip()
    except ValueError:
        return 0, 0, "", line


def quote(arg: object) -> str:
    """One command argument, double-quoted with ``\\`` and ``"`` escaped."""
    text = str(arg)
    if "\n" in text or "\r" in text:
        raise ValueError(f"MPD arguments cannot contain line breaks: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_line(name: str, *args: object) -> str:
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"not an MPD command name: {name!r}")
    return " ".join([name, *(quote(a) for a in args)])


class Backoff:
    """Capped exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to ``cap`` seconds."""

    def __init__(self, initial: float = 0.5, factor: float = 2.0, cap: float = 30.0, jitter: float = 0.1):
        self.initial, self.factor, self.cap, self.jitter = initial, factor, cap, jitter
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.initial * (self.factor**self.failures))
        self.failures += 1
        return delay * (1.0 + random.uniform(-self.jitter, self.jitter))  # noqa: S311 - not crypto

    def reset(self) -> None:
        self.failures = 0


Pairs = list[tuple[str, str]]


class MPDClient:
    """One connection to MPD. See the module docstring for the protocol and error handling."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        password: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ):
        self.host = host or "localhost"
        self.port = int(port or DEFAULT_PORT)
        self.password = password or None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.version: str | None = None
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    # connection ----------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.host if self.is_unix else f"{self.host}:{self.port}"

    @property
    def is_unix(self) -> bool:
        return self.host.startswith(("/", "@"))

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> MPDClient:
        """Connect, read the greeting and send the password if one is set.

        Raises :class:`MPDConnectionError` (unreachable, bad greeting) or
        :class:`MPDCommandError` (wrong password); the client is left disconnected on error.
        """
        self.close()
        try:
            if self.is_unix:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                address: object = "\0" + self.host[1:] if self.host.startswith("@") else self.host
                sock.settimeout(self.connect_timeout)
                try:
                    sock.connect(address)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise MPDConnectionError(f"cannot connect to MPD at {self.address}: {_reason(exc)}") from None
        self._sock = sock
        self._buf.clear()
        try:
            sock.settimeout(self.timeout)
            greeting = self._readline(time.monotonic() + self.connect_timeout)
            if not greeting.startswith("OK MPD "):
                raise MPDProtocolError(f"{self.address} is not MPD (greeting {greeting[:60]!r})")
            self.version = greeting[len("OK MPD ") :].strip()
            if self.password:
                self.command("password", self.password)
        except BaseException:
            self.close()
            raise
        return self

    def connect_with_backoff(
        self,
        stop_event: threading.Event | None = None,
        backoff: Backoff | None = None,
        *,
        max_wait: float | None = None,
    ) -> bool:
        """Connect, retrying with capped exponential backoff; never raises.

        Returns True once connected, False when ``stop_event`` was set or ``max_wait`` seconds
        passed. The first failure is logged as a warning, repeats at debug level, and a
        reconnection after failures at info level.
        """
        backoff = backoff or Backoff()
        stop_event = stop_event or threading.Event()
        deadline = None if max_wait is None else time.monotonic() + max_wait
        failed = 0
        while not stop_event.is_set():
            try:
                self.connect()
            except (MPDError, OSError, ValueError) as exc:
                failed += 1
                delay = backoff.next_delay()
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    delay = min(delay, left)
                level = logging.WARNING if failed == 1 else logging.DEBUG
                log.log(level, "%s; retrying in %.1f s", exc, delay)
                if stop_event.wait(delay):
                    return False
                continue
            if failed:
                log.info("reconnected to MPD at %s after %d failed attempts", self.address, failed)
            backoff.reset()
            return True
        return False

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._buf.clear()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> MPDClient:
        if not self.connected:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # low level ------------------------------------------------------------------------------------

    def _fail(self, message: str, cls: type[MPDConnectionError] = MPDConnectionError) -> MPDConnectionError:
        self.close()
        return cls(f"MPD at {self.address}: {message}")

    def _send(self, text: str) -> None:
        if self._sock is None:
            raise MPDConnectionError(f"not connected to MPD at {self.address}")
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(text.encode(ENCODING, "surrogateescape"))
        except OSError as exc:
            raise self._fail(f"send failed: {_reason(exc)}") from None

    def _readline(self, deadline: float | None = None, *, poll: float | None = None) -> str:
        """One response line without its newline.

        Waits until ``deadline`` (monotonic; default: now + ``timeout``), then drops the
        connection. With ``poll``, raises ``TimeoutError`` after ``poll`` seconds without a full
        line instead, keeping any partial line buffered (used by :meth:`idle`).
        """
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return raw.decode(ENCODING, "surrogateescape")
            if len(self._buf) > _MAX_LINE:
                raise self._fail("response line too long", MPDProtocolError)
            if self._sock is None:
                raise MPDConnectionError(f"not connected to MPD at {self.address}")
            left = deadline - time.monotonic()
            wait = left if poll is None else min(left, poll)
            if left <= 0:
                raise self._fail(f"no answer within {self.timeout:g} s")
            try:
                self._sock.settimeout(max(wait, 0.001))
                chunk = self._sock.recv(65536)
            except TimeoutError:
                if poll is not None and time.monotonic() < deadline:
                    raise
                continue
            except OSError as exc:
                raise self._fail(f"receive failed: {_reason(exc)}") from None
            if not chunk:
                raise self._fail("connection closed by MPD")
            self._buf += chunk

    def _read_pairs(self, end: tuple[str, ...] = ("OK",)) -> tuple[Pairs, str]:
        """Read ``key: value`` lines up to one of the ``end`` lines; ACK raises MPDCommandError."""
        pairs: Pairs = []
        while True:
            line = self._readline()
            if line in end:
                return pairs, line
            if line.startswith("ACK "):
                raise MPDCommandError(line)
            key, sep, value = line.partition(": ")
            if not sep:
                raise self._fail(f"unexpected line {line[:80]!r}", MPDProtocolError)
            pairs.append((key, value))

    # commands -------------------------------------------------------------------------------------

    def command(self, name: str, *args: object) -> Pairs:
        """Run one command; returns its ``(key, value)`` pairs in order."""
        self._send(command_line(name, *args) + "\n")
        return self._read_pairs()[0]

    def command_list(self, commands: Sequence[tuple[str, Sequence[object]]]) -> list[Pairs]:
        """Run ``[(name, args), ...]`` as one command list; returns each command's pairs.

        An ACK raises :class:`MPDCommandError` whose ``index`` is the failing command's position;
        commands before it were run, those after it were not.
        """
        if not commands:
            return []
        lines = ["command_list_ok_begin"]
        lines += [command_line(name, *args) for name, args in commands]
        lines.append("command_list_end")
        self._send("\n".join(lines) + "\n")
        results: list[Pairs] = []
        while True:
            pairs, end = self._read_pairs(("list_OK", "OK"))
            if end == "OK":
                if pairs:
                    results.append(pairs)
                return results
            results.append(pairs)

    def idle(
        self,
        subsystems: Iterable[str] = (),
        *,
        timeout: float | None = None,
        stop_event: threading.Event | None = None,
        poll: float = 0.25,
    ) -> list[str]:
        """Wait for changes in ``subsystems`` (all when empty); returns the changed ones.

        Returns early (sending ``noidle``) when ``timeout`` seconds pass or ``stop_event`` is set;
        then the list holds whatever changed meanwhile, often nothing. Checks ``stop_event``
        every ``poll`` seconds.
        """
        self._send(command_line("idle", *subsystems) + "\n")
        end = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        changed: list[str] = []
        cancelled = False
        while True:
            if not cancelled and (
                (stop_event is not None and stop_event.is_set())
                or (end is not None and time.monotonic() >= end)
            ):
                self._send("noidle\n")
                cancelled = True
            try:
                # while idle MPD may stay silent for hours: no overall deadline, short polls
                line = self._readline(
                    time.monotonic() + (self.timeout if cancelled else 86400.0),
                    poll=None if cancelled else poll,
                )
            except TimeoutError:
                continue
            if line == "OK":
                return changed
            if line.startswith("ACK "):
                raise MPDCommandError(line)
            key, _, value = line.partition(": ")
            if key == "changed":
                changed.append(value)
            else:
                raise self._fail(f"unexpected line in idle: {line[:80]!r}", MPDProtocolError)

    # helpers --------------------------------------------------------------------------------------

    def status(self) -> dict[str, str]:
        return dict(self.command("status"))

    def currentsong(self) -> dict[str, str]:
        return dict(self.command("currentsong"))

    def playlistinfo(self) -> list[dict[str, str]]:
        return songs(self.command("playlistinfo"))

    def ping(self) -> None:
        self.command("ping")


def songs(pairs: Pairs) -> list[dict[str, str]]:
    """Split a song list response into one dict per song (a new song starts at each ``file``)."""
    out: list[dict[str, str]] = []
    for key, value in pairs:
        if key == "file" or not out:
            out.append({})
        out[-1].setdefault(key, value)
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def mpd_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``host``, ``port`` and ``password`` from ``MPD_HOST`` and ``MPD_PORT``, read as mpc and
    libmpdclient read them (only those set): ``MPD_HOST`` is ``[password@]host``, where host may
    be a socket path or ``@name`` (an abstract socket, so ``password@@name`` has both)."""
    env = os.environ if env is None else env
    found: dict[str, Any] = {}
    host = env.get("MPD_HOST", "")
    if not host.startswith("@") and "@" in host:
        found["password"], host = host.split("@", 1)
    if host:
        found["host"] = host
    port = env.get("MPD_PORT", "")
    if port.isdigit() and 0 < int(port) < 65536:
        found["port"] = int(port)
    elif port:
        log.warning("MPD_PORT=%r is not a port number; ignored", port)
    return found
