"""Milvus helpers the search benchmarks share: an embedded Milvus Lite's background work and segments, and a
server collection of MotionMatch's clip schema with its index built and searched."""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from .timing import time_calls
from .vectors import K, recall_at_k

MIXTURE_ENCODER_ID = "bench:mixture"


# ----------------------------------------------------------------------------- Milvus Lite (in this process)
def _lite_collection(uri: str, collection: str):
    from milvus_lite import server_manager_instance

    _, database, _ = server_manager_instance._servers[os.path.abspath(uri)]  # noqa: SLF001 - no public call
    return database.get_collection(collection)


def lite_wait_for_background_work(client, uri: str, collection: str, timeout_s: float = 600) -> float:
    """Flush, then let the embedded Milvus Lite finish indexing and compaction before anything is timed (that
    work runs in this process and would slow every timed search); returns the seconds it took.

    There is no public call for this: it reaches into the embedded engine and silently does nothing if that
    internal API changes (the timings stay valid, only noisier).
    """
    started = time.perf_counter()
    try:
        client.flush(collection)
        _lite_collection(uri, collection)._wait_for_bg(timeout=timeout_s)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - internal API, best effort
        pass
    return time.perf_counter() - started


def lite_segment_rows(uri: str, collection: str) -> list[int]:
    """Rows per on-disk segment (each gets its own index), or [] where the internal API is not there."""
    try:
        return [s.num_rows for s in _lite_collection(uri, collection)._segments_snapshot()]  # noqa: SLF001
    except Exception:  # noqa: BLE001
        return []


def release_lite(client, uri: str) -> None:
    """Close the client and stop the in-process server of ``uri``, freeing its memory."""
    from milvus_lite import server_manager_instance

    client.close()
    server_manager_instance.release_server(uri)


# ----------------------------------------------------------------------------- a Milvus server (standalone)
def vectors_table(start: int, vectors: np.ndarray, encoder_id: str = MIXTURE_ENCODER_ID) -> pd.DataFrame:
    """An embeddings table for rows ``start..`` (clip ids are the row numbers, zero-padded; 4 clips a video)."""
    n = len(vectors)
    ids = [f"{i:012d}" for i in range(start, start + n)]
    return pd.DataFrame({
        "clip_id": ids, "video_path": [f"/bench/v{i // 4:09d}.mp4" for i in range(start, start + n)],
        "video_fingerprint": "fp", "clip_index": np.arange(start, start + n) % 4, "start_s": 0.0, "end_s": 1.0,
        "padded_frames": 0, "label": "x", "domain": "d", "group": "g", "split": "", "encoder_id": encoder_id,
        "embedding": list(vectors)})


def open_server_collection(uri: str, name: str, dim: int, encoder_id: str = MIXTURE_ENCODER_ID):
    """A fresh MotionStore collection with a FLAT index (so no index build is timed as ingest)."""
    from motionmatch.index import IndexConfig, MotionStore

    store = MotionStore(uri, name, timeout_s=60, index=IndexConfig("FLAT"))
    store.ensure_collection(encoder_id, dim, {"bench": "mixture"}, recreate=True)
    return store


def server_build_index(store, index_type: str, params: dict, timeout_s: float = 3600) -> float:
    """Replace the collection's index; seconds until every row is indexed and the collection is loaded."""
    client, name = store.client, store.collection
    started = time.perf_counter()
    client.release_collection(name)
    client.drop_index(name, "embedding")
    index = client.prepare_index_params()
    index.add_index("embedding", index_type=index_type, metric_type="COSINE", params=params)
    client.create_index(name, index)
    deadline = time.monotonic() + timeout_s
    while True:
        described = client.describe_index(name, "embedding")
        if described.get("state") == "Finished" or (described.get("indexed_rows") and
                                                      described.get("indexed_rows") >= described.get("total_rows", 0)
                                                      and not described.get("pending_index_rows")):
            break
        if described.get("state") == "Failed":
            raise RuntimeError(f"{index_type} build failed: {described}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{index_type} build did not finish within {timeout_s:.0f} s: {described}")
        time.sleep(1.0)
    client.load_collection(name)
    return time.perf_counter() - started


def server_search_latency(store, queries: np.ndarray, truth: np.ndarray, search_params: dict, cap_s: float) -> dict:
    """One query at a time on the server: p50 / p99 ms and recall@10 against ``truth``."""
    client, name = store.client, store.collection
    param = {"metric_type": "COSINE", "params": search_params}

    def search(query):
        hits = client.search(name, data=[query.tolist()], limit=K, search_params=param, anns_field="embedding")
        return [int(h["id"]) for h in hits[0]]

    timed = time_calls(search, queries, warmup=5, cap_s=cap_s, keep=True)
    return {"queries": timed.n, "p50_ms": timed.p50_ms, "p99_ms": timed.p99_ms,
            "recall_at_10": recall_at_k(timed.results, truth[:timed.n])}


__all__ = ["MIXTURE_ENCODER_ID", "lite_wait_for_background_work", "lite_segment_rows", "release_lite", "vectors_table",
           "open_server_collection", "server_build_index", "server_search_latency"]
