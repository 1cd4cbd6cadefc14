"""Milvus Lite process bookkeeping: one embedded server per ``.db`` path per process, released when the
last store using it closes, and a check whether another process holds the file's lock."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

lite_lock = threading.Lock()  # held while a store opens or releases a Lite file
_open_counts: dict[str, int] = {}


def file_is_locked(path: str) -> bool:
    """True when another process holds Milvus Lite's advisory lock on ``path``."""
    lock_path = Path(path) / "LOCK"
    if sys.platform == "win32" or not lock_path.exists():
        return False
    import fcntl  # POSIX only; guarded by the platform check above

    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def opened(path: str) -> None:
    """Count one more store using ``path`` (call with :data:`lite_lock` held)."""
    _open_counts[path] = _open_counts.get(path, 0) + 1


def release(path: str) -> None:
    """Stop this process's embedded Milvus Lite for ``path`` once no store uses it (frees the file lock)."""
    with lite_lock:
        remaining = _open_counts.get(path, 0) - 1
        if remaining > 0:
            _open_counts[path] = remaining
            return
        _open_counts.pop(path, None)
    try:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)
    except Exception:  # noqa: BLE001 - best effort; the process exit releases it anyway
        pass
