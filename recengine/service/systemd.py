"""systemd: the ``sd_notify`` messages of a ``Type=notify`` service, and the unit files.

:func:`notify` sends one datagram to ``$NOTIFY_SOCKET`` (the protocol of ``sd_notify(3)``, no
library needed); outside systemd it does nothing. The unit files ship in the package
(``recengine/service/units``) with ``@EXEC_START@`` where the command goes; :func:`render_unit`
fills it with the Python recengine runs in, so no path is hard-coded.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from recengine.config.loader import xdg_config_home

log = logging.getLogger(__name__)

#: Unit kind -> the shipped template (package data) and where ``service install`` puts it.
UNIT_TEMPLATES = {"user": "recengine-user.service", "system": "recengine.service"}
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
PLACEHOLDER = "@EXEC_START@"


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager; False when there is none or it
    cannot be reached (logged at debug level: a notification never stops the daemon)."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.debug("sd_notify %r to %s failed: %s", state, env["NOTIFY_SOCKET"], exc)
        return False
    return True


def notify_ready(env: Mapping[str, str] | None = None) -> bool:
    """Start-up (or a reload) is done."""
    return notify("READY=1", env)


def notify_stopping(env: Mapping[str, str] | None = None) -> bool:
    return notify("STOPPING=1", env)


def notify_reloading(env: Mapping[str, str] | None = None) -> bool:
    """A reload started; :func:`ready` ends it (``MONOTONIC_USEC`` as systemd 253+ wants it)."""
    return notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}", env)


def unit_template(kind: str) -> str:
    """The shipped unit file of ``kind`` (``user`` or ``system``), placeholder and all."""
    return resources.files("recengine.service").joinpath("units", UNIT_TEMPLATES[kind]).read_text()


def exec_start(config: Path | None = None, python: str = sys.executable) -> list[str]:
    """The daemon's command line: this interpreter (a venv's keeps its packages), and ``--config``
    only when one was named (else the unit finds the config as the command line does)."""
    args = [python, "-m", "recengine"]
    if config is not None:
        args += ["--config", str(Path(config).absolute())]
    return args + ["daemon"]


def render_unit(kind: str, command: Sequence[str]) -> str:
    """The unit file of ``kind`` running ``command``."""
    return unit_template(kind).replace(PLACEHOLDER, " ".join(_quote(arg) for arg in command))


def user_unit_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/systemd/user`` (``~/.config/systemd/user``), where systemd looks."""
    return xdg_config_home(env) / "systemd" / "user"


def _quote(arg: str) -> str:
    """One ExecStart word: ``%`` and ``$`` escaped (specifiers, variables), quoted if it has spaces."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if any(c.isspace() or c in "\"'\\;" for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
