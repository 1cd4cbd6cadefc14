"""Shared fixtures: temporary Milvus Lite files, a real `milvus-lite server` on loopback, random tables.

Helpers other test files may import directly (``from conftest import start_milvus_server``):
``start_milvus_server``, ``stop_milvus_server``, ``make_random_table``.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from motionmatch.table import make_clip_id

MILVUS_LITE_BIN = Path(sys.executable).parent / "milvus-lite"
SERVER_START_TIMEOUT_S = 20.0
RANDOM_ENCODER_ID = "test:random"


# ----------------------------------------------------------------------------- running on two workers
# `make test` runs pytest on two workers (pytest-xdist, --dist loadgroup). Tests that start a heavy shared service
# stay on one worker, so that the service starts once and two of them never compete for the 2 cores.
SERVICE_GROUPS = {"milvus_cpp_server": "milvus_cpp"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = next((SERVICE_GROUPS[name] for name in item.fixturenames if name in SERVICE_GROUPS),
                     "ray" if item.get_closest_marker("ray") else None)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))


# ----------------------------------------------------------------------------- random embeddings tables
def make_random_table(n: int, dim: int, seed: int = 0, clips_per_video: int = 4,
                      labels: tuple[str, ...] = ("walk", "run", "jump"), domains: tuple[str, ...] = ("studio", "street"),
                      encoder_id: str = RANDOM_ENCODER_ID, extra_vectors: dict[str, int] | None = None) -> pd.DataFrame:
    """A valid embeddings table (docs/ARCHITECTURE.md columns) of ``n`` clips with random unit vectors.

    Clips are grouped ``clips_per_video`` to a video; each video gets a label and a domain in turn.
    ``extra_vectors`` adds more unit-vector columns (e.g. ``{"visual": 8}``).
    """
    rng = np.random.default_rng(seed)
    n_videos = max(1, math.ceil(n / clips_per_video))
    rows = []
    for row in range(n):
        video, clip = divmod(row, clips_per_video)
        label, domain = labels[video % len(labels)], domains[(video // len(labels)) % len(domains)]
        path = f"/data/{domain}/{label}/video_{video:04d}.mp4"
        rows.append({
            "clip_id": make_clip_id(path, clip, encoder_id), "video_path": path,
            "video_fingerprint": f"fp{seed:04d}{video:06d}", "clip_index": clip,
            "start_s": 1.5 * clip, "end_s": 1.5 * clip + 1.25, "padded_frames": 0,
            "label": label, "domain": domain, "group": f"actor{video % max(1, n_videos // 2)}",
            "split": "train" if video % 4 else "test", "encoder_id": encoder_id,
        })
    table = pd.DataFrame(rows)
    for column, column_dim in {"embedding": dim, **(extra_vectors or {})}.items():
        vectors = rng.standard_normal((n, column_dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        table[column] = list(vectors)
    return table


@pytest.fixture
def random_table():
    """The factory ``random_table(n, dim, seed=0, **options)`` -> embeddings DataFrame."""
    return make_random_table


@pytest.fixture
def tmp_db_uri(tmp_path) -> str:
    """A fresh Milvus Lite path (not yet created) inside the test's tmp folder."""
    return str(tmp_path / "milvus" / "test.db")


# ----------------------------------------------------------------------------- a server killed mid-upsert
def kill_during_upsert(uri: str, collection: str, table: pd.DataFrame, batch: int, kill, *, encoder_id: str,
                       min_batches: int = 4, join_s: float = 90) -> dict:
    """Upsert ``table`` into a new collection in a thread; once ``min_batches`` batches are visible, ``kill()`` the
    server; return {"seen": rows seen before the kill, "error": what the upsert raised, "seconds_to_error"}.

    The watcher connects before the upsert starts, so a fast server cannot finish the upsert unseen.
    """
    from motionmatch.index.store import MotionStore

    outcome: dict = {}
    store = MotionStore(uri, collection, timeout_s=5)
    store.ensure_collection(encoder_id, len(table.embedding.iloc[0]), {"seed": 5}, recreate=True)

    def insert() -> None:
        try:
            outcome["written"] = store.upsert(table, batch_size=batch, progress=False)
        except Exception as error:  # noqa: BLE001 - the caller inspects what came out
            outcome["error"] = error
        outcome["ended"] = time.monotonic()

    writer = threading.Thread(target=insert)
    try:
        with MotionStore(uri, collection) as watcher:
            watcher.count()
            writer.start()
            deadline = time.monotonic() + 60
            while (seen := watcher.count()) < min_batches * batch and time.monotonic() < deadline:
                time.sleep(0.02)
        assert writer.is_alive(), "the upsert finished before the server could be killed: make the table larger"
        killed_at = time.monotonic()
        kill()
        writer.join(timeout=join_s)
        assert not writer.is_alive(), f"the upsert still runs {join_s:.0f} s after the server was killed"
    finally:
        store.close()
    return {"seen": seen, "error": outcome.get("error"), "written": outcome.get("written"),
            "seconds_to_error": outcome["ended"] - killed_at}


# ----------------------------------------------------------------------------- reachability
def external_addresses() -> list[str]:
    """This machine's IPv4 / global IPv6 addresses other than loopback (link-local ones need a scope)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                ip = ipaddress.ip_address(address.address.split("%")[0])
                if not (ip.is_loopback or ip.is_link_local):
                    found.append(str(ip))
    return found


def connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- a real milvus-lite server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_answers(uri: str) -> bool:
    from pymilvus import MilvusClient

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # pymilvus logs every refused connection attempt
    try:
        client = MilvusClient(uri=uri, timeout=2)
        client.list_collections()
        client.close()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False
    finally:
        logging.disable(previous)


def start_milvus_server(data_dir: str | Path, port: int | None = None,
                        timeout_s: float = SERVER_START_TIMEOUT_S) -> tuple[subprocess.Popen, str]:
    """Start `milvus-lite server` on loopback for ``data_dir``; wait until it answers; return (process, uri).

    The server's output goes to ``<data_dir>.log``. Stop it with :func:`stop_milvus_server`.
    """
    if not MILVUS_LITE_BIN.exists():
        pytest.skip(f"{MILVUS_LITE_BIN} not found: install milvus-lite into the virtualenv to run server tests")
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    uri = f"http://127.0.0.1:{port}"
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(MILVUS_LITE_BIN), "server", "--data-dir", str(data_dir),
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _server_answers(uri):
            return process, uri
        time.sleep(0.2)
    stop_milvus_server(process)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"milvus-lite server for {data_dir} on port {port} did not answer within {timeout_s:.0f} s "
                       f"(exit code {process.returncode}); its log {log_path}:\n{tail}")


def stop_milvus_server(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Terminate a server started by :func:`start_milvus_server` (kill it if it does not stop)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory) -> str:
    """URI (``http://127.0.0.1:PORT``) of one real `milvus-lite server` shared by the session."""
    process, uri = start_milvus_server(tmp_path_factory.mktemp("milvus_server") / "data")
    yield uri
    stop_milvus_server(process)


@pytest.fixture(scope="session")
def milvus_cpp_server(tmp_path_factory):
    """One real C++ Milvus standalone (the `milvus` wheel, v2.3.5) for the session, in its own network namespace
    and reachable on 127.0.0.1 only (where the kernel allows a namespace; else on every interface), as a
    :class:`motionmatch.index.standalone.StandaloneServer` (``.uri``, ``.kill()``, ``.restart()``); skipped when the
    `milvus` package is not installed. SIGTERM then SIGKILL on teardown."""
    from motionmatch.errors import MissingPackageError
    from motionmatch.index.standalone import start_standalone

    try:
        server = start_standalone(tmp_path_factory.mktemp("milvus_cpp") / "data")
    except MissingPackageError as error:
        pytest.skip(str(error))
    yield server
    server.stop()
