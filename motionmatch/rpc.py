"""Calling pymilvus: transient-failure retries and quiet logs for the errors MotionStore wraps.

Why retry at all: a ``milvus-lite server`` (Python gRPC with its default ping policy: at most one
ping per 5 minutes with a call open, per 2 hours without, 2 strikes allowed) answers pymilvus'
10-second keepalive pings with ``GOAWAY ENHANCE_YOUR_CALM too_many_pings`` once a connection has
collected three strikes; a call that is in flight on that connection at that moment fails with
``UNAVAILABLE: Too many pings``. pymilvus retries most RPCs itself, but not the handshake a new
``MilvusClient`` makes (``Connect``), so opening a store could fail although the server is fine.
:func:`retry_transient` retries UNAVAILABLE with bounded backoff and says so once per process.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

log = logging.getLogger("motionmatch.store")
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
