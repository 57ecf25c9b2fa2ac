"""Running a child process within bounds: its own process group, no stdin, capped CPU time, memory,
file size and output, killed (with everything it started) on timeout. And :func:`pid_alive`."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1


def _child_setup(cpu_s: int, mem_bytes: int, fsize: int = 0) -> None:
    """In the child, before exec: die with the parent, cap CPU time, address space and file size."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    with contextlib.suppress(Exception):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    if mem_bytes:
        with contextlib.suppress(Exception):
            resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    if fsize:
        with contextlib.suppress(Exception):
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


@dataclass
class RunResult:
    returncode: int | None
    stdout: bytearray
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False


def run_bounded(
    argv: list[str], *, timeout: float, max_bytes: int, mem_limit: int = 2 << 30, stderr_cap: int = 64 * 1024,
    fsize_limit: int = 0
) -> RunResult:
    """Run ``argv`` with no stdin in its own process group; read stdout up to ``max_bytes``; kill the
    group on timeout or overflow. Never leaves a child behind.

    Raises ``OSError`` when ``argv[0]`` cannot be started."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        preexec_fn=lambda: _child_setup(int(timeout) + 5, mem_limit, fsize_limit),  # noqa: PLW1509 - workers are single-threaded
    )
    assert proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(OSError):  # a 1 MiB pipe: fewer wake-ups and reads per track
        fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, 1 << 20)
    out = bytearray(max_bytes + 1)  # read straight into one buffer: no chunk list, no joins
    view = memoryview(out)
    n = 0
    err = bytearray()
    deadline = time.monotonic() + timeout
    timed_out = truncated = False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    try:
        open_streams = 2
        while open_streams:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                if key.data == "err":
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                    elif len(err) < stderr_cap:
                        err += chunk[: stderr_cap - len(err)]
                    continue
                got = os.readv(key.fd, [view[n:]])
                if not got:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                n += got
                if n > max_bytes:
                    n = max_bytes
                    truncated = True
                    open_streams = 0
                    break
        if not (timed_out or truncated) and not _wait_exited(proc.pid, deadline):
            timed_out = True  # closed its pipes but kept running
    finally:
        sel.close()
        # The leader is not reaped yet (a zombie at worst), so its pid cannot have been reused and
        # the group kill reaches only our child and whatever it started (stragglers included).
        _kill_group(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    view.release()
    del out[n:]
    return RunResult(proc.returncode, out, bytes(err), timed_out, truncated)


_F_SETPIPE_SZ = 1031  # Linux fcntl: set a pipe's capacity


def _wait_exited(pid: int, deadline: float) -> bool:
    """Wait until ``pid`` has exited (without reaping it) or ``deadline``; True if it exited."""
    pause = 0.001
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
