"""Connecting to Milvus: Milvus Lite process bookkeeping, retries of transient failures, the server's version.

* **Milvus Lite**: one embedded server per ``.db`` path per process, released when the last store using it
  closes, and a check whether another process holds the file's lock.
* **Retries**: Why retry at all: a ``milvus-lite server`` (Python gRPC with its default ping policy: at most one
  ping per 5 minutes with a call open, per 2 hours without, 2 strikes allowed) answers pymilvus'
  10-second keepalive pings with ``GOAWAY ENHANCE_YOUR_CALM too_many_pings`` once a connection has
  collected three strikes; a call that is in flight on that connection at that moment fails with
  ``UNAVAILABLE: Too many pings``. pymilvus retries most RPCs itself, but not the handshake a new
  ``MilvusClient`` makes (``Connect``), so opening a store could fail although the server is fine.
  :func:`retry_transient` retries UNAVAILABLE with bounded backoff and says so once per process.
* **Server version**: asked once per URI; multi-vector collections need Milvus 2.4+ (:func:`require_multi_vector`).
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from ..errors import StoreError

# ----------------------------------------------------------------------------- Milvus Lite
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


# ----------------------------------------------------------------------------- transient failures
log = logging.getLogger("motionmatch.index.store")
T = TypeVar("T")

# Backoff between attempts (seconds); the total wait is bounded by their sum (1.75 s).
RETRY_BACKOFF_S = (0.25, 0.5, 1.0)
_said_once = threading.Event()
_wrapping = threading.local()


class _DropIteratorTimestampWarning(logging.Filter):
    """Milvus Lite has no MVCC timestamp; pymilvus warns on every query_iterator. The fallback is fine."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


class _DropErrorsWeWrap(logging.Filter):
    """pymilvus logs a full traceback for every failed RPC; inside MotionStore the failure is re-raised as
    a StoreError that says what to do, so the log record is dropped (only on this thread, only then)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_wrapping, "active", False)


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_DropIteratorTimestampWarning())
for _logger_name in ("pymilvus.decorators", "pymilvus.client.connection_manager", "milvus_lite.server_manager"):
    logging.getLogger(_logger_name).addFilter(_DropErrorsWeWrap())


@contextmanager
def quiet_library_errors() -> Iterator[None]:
    """Drop pymilvus' own error logs on this thread while the block runs (the caller wraps the error)."""
    previous = getattr(_wrapping, "active", False)
    _wrapping.active = True
    try:
        yield
    finally:
        _wrapping.active = previous


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is gRPC UNAVAILABLE: the connection, not the request, failed."""
    import grpc

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, grpc.RpcError) and callable(getattr(error, "code", None)):
            try:
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    return True
            except Exception:  # noqa: BLE001 - a half-built RpcError
                pass
        text = str(error)
        if "UNAVAILABLE" in text or "too_many_pings" in text or "Too many pings" in text:
            return True
        error = error.__cause__ or error.__context__
    return False


def retry_transient(action: str, where: str, call: Callable[[], T],
                    backoff_s: tuple[float, ...] = RETRY_BACKOFF_S) -> T:
    """``call()``, retried after each of ``backoff_s`` while it fails with a transient UNAVAILABLE.

    Only for idempotent calls. The first retry in a process is logged (a warning, once); the last
    failure is raised unchanged for the caller to wrap.
    """
    for attempt in range(len(backoff_s) + 1):
        try:
            with quiet_library_errors():
                return call()
        except Exception as error:  # noqa: BLE001 - only transient ones are retried
            if attempt == len(backoff_s) or not is_transient(error):
                raise
            if not _said_once.is_set():
                _said_once.set()
                log.warning("%s at %s: the connection was refused or dropped (%s); retrying up to %d times "
                            "with backoff %s s (said once per process)", action, where,
                            str(error).splitlines()[0][:200], len(backoff_s), "/".join(map(str, backoff_s)))
            time.sleep(backoff_s[attempt])
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- server version
MULTI_VECTOR_MIN_VERSION = (2, 4)  # Milvus added several vector fields per collection and HybridSearch in 2.4
_SERVER_VERSIONS: dict[str, str] = {}  # server URI -> the version it reported


def server_version(store) -> tuple[str, tuple[int, int] | None]:
    """The Milvus version a server store reports ("v2.3.5-lite" -> (2, 3)); ("", None) for Milvus Lite / unknown."""
    if getattr(store, "is_local", True):
        return "", None
    if store.uri not in _SERVER_VERSIONS:  # asked once per server and process
        try:
            _SERVER_VERSIONS[store.uri] = str(store.client.get_server_version())
        except Exception:  # noqa: BLE001 - an old or unusual server: let the call itself say what fails
            return "", None
    text = _SERVER_VERSIONS[store.uri]
    found = re.match(r"v?(\d+)\.(\d+)", text)
    return text, ((int(found.group(1)), int(found.group(2))) if found else None)


def require_multi_vector(store, action: str = "a hybrid (multi-vector) collection") -> None:
    """StoreError naming the Milvus version needed when the server predates multi-vector collections (2.4)."""
    text, version = server_version(store)
    if version is not None and version < MULTI_VECTOR_MIN_VERSION:
        need = ".".join(map(str, MULTI_VECTOR_MIN_VERSION))
        raise StoreError(f"{action} needs Milvus {need} or newer (several vector fields per collection and hybrid "
                         f"search); the server at {store.uri} runs {text}. Point --milvus-uri at a Milvus {need}+ "
                         f"server (deploy/docker-compose.yml runs one), or use a Milvus Lite .db path; plain "
                         f"`motionmatch index` / `search` work on this server")
