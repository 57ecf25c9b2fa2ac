"""A real Subsonic server for tests: supysonic (PyPI), in its own venv made by scripts/setup
(``.venv-supysonic``; ``RECENGINE_SUPYSONIC`` may name another folder's ``bin``), started on a free
loopback port over a library the test generates."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def supysonic_bin() -> Path | None:
    folder = Path(os.environ.get("RECENGINE_SUPYSONIC") or ROOT / ".venv-supysonic" / "bin")
    return folder if (folder / "supysonic-server").exists() else None


def require_supysonic() -> Path:
    folder = supysonic_bin()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("supysonic is missing: scripts/setup installs it into .venv-supysonic")
        pytest.skip("supysonic not installed (run scripts/setup)")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def supysonic_server(workdir: Path, music: Path, *, user: str = "alice", password: str = "secret"):
    """Yields the server's base URL; the library ``music`` is scanned before it starts."""
    bin_dir = require_supysonic()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "supysonic.conf"
    conf.write_text(f"[base]\ndatabase_uri = sqlite:///{workdir / 's.db'}\n"
                    f"[webapp]\ncache_dir = {workdir / 'cache'}\nmount_api = on\nmount_webui = off\n"
                    f"[daemon]\nsocket = {workdir / 'daemon.sock'}\n")
    env = dict(os.environ)  # supysonic 0.7.9 reads ./supysonic.conf (it has no variable for the path)
    cli = str(bin_dir / "supysonic-cli")
    for args in (["user", "add", user, "-p", password], ["folder", "add", "music", str(music)],
                 ["folder", "scan", "music"]):
        subprocess.run([cli, *args], env=env, cwd=workdir, check=True, capture_output=True, timeout=120)
    port = free_port()
    log = open(workdir / "server.log", "wb")
    proc = subprocess.Popen([str(bin_dir / "supysonic-server"), "-S", "waitress", "-h", "127.0.0.1", "-p", str(port)],
                            env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/rest/ping.view?u={user}&p={password}&v=1.12.0&c=t&f=json", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"supysonic did not start: {(workdir / 'server.log').read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
