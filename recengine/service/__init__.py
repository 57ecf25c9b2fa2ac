"""The service: the long-running daemon, its data-dir lock and its status file."""

from recengine.service.daemon import Daemon
from recengine.service.lock import AlreadyRunning, DataDirLock, running_pid
from recengine.service.status import read_status, write_status

__all__ = ["AlreadyRunning", "Daemon", "DataDirLock", "read_status", "running_pid", "write_status"]
