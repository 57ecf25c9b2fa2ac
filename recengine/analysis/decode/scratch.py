"""Scratch folders for batch decodes: RAM-backed where possible, named after their owner's pid so
that the folders of a worker that was killed mid-batch can be found and removed."""

from __future__ import annotations

import os
import shutil
import tempfile

from recengine.analysis.decode.process import pid_alive

BATCH_PREFIX = "recengine-batch-"


def scratch_dir() -> str | None:
    """RAM-backed scratch space for batch outputs when there is some, else None (the default temp dir)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def batch_dir() -> tempfile.TemporaryDirectory:
    """A fresh scratch folder for one batch, removed when the ``with`` block ends."""
    return tempfile.TemporaryDirectory(prefix=f"{BATCH_PREFIX}{os.getpid()}-", dir=scratch_dir())


def sweep_batch_dirs() -> int:
    """Remove batch scratch folders whose worker died before cleaning up (killed, or stopped by
    SIGTERM during a batch). Their names carry the owner's pid. Returns how many were removed."""
    removed = 0
    for base in {scratch_dir() or tempfile.gettempdir(), tempfile.gettempdir()}:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            if not name.startswith(BATCH_PREFIX):
                continue
            pid = name[len(BATCH_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and pid_alive(int(pid)):
                continue
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed += 1
    return removed
