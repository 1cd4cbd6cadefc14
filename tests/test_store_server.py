"""MotionStore against a real `milvus-lite server` on loopback: the same core checks as on Lite files,
plus what only a server does (unreachable URI, a server that goes away and comes back)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import start_milvus_server, stop_milvus_server
from test_store import CORE_CHECKS, DIM, PREPROCESSING, _open

from motionmatch.errors import StoreError
from motionmatch.store import MotionStore

pytestmark = pytest.mark.server


@pytest.mark.parametrize("check", CORE_CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_core_on_server(check, milvus_server):
    check(milvus_server, check.__name__.removeprefix("check_")[:60])


def test_two_clients_share_one_server(milvus_server):
    first, table = _open(milvus_server, "shared_clients", n=12)
    with first, MotionStore(milvus_server, "shared_clients") as second:
        assert second.count() == 12
        assert second.search(table.embedding.iloc[4], k=1)[0][0].clip_id == table.clip_id.iloc[4]
        assert second.encoder_info()["preprocessing"] == PREPROCESSING
        second.delete_videos([table.video_path.iloc[0]])
        assert first.count() == 8


def test_unreachable_server_fails_fast():
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"http://127\.0\.0\.1:9.*[Ss]tart the server"):
        MotionStore("http://127.0.0.1:9", "clips", timeout_s=3)
    assert time.monotonic() - started < 10


def test_server_that_goes_away_gives_store_error_then_recovers(tmp_path):
    process, uri = start_milvus_server(tmp_path / "data")
    try:
        store, table = _open(uri, "restart", n=8)
        stop_milvus_server(process)
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"(?s)restart.*{uri}"):
            store.search(np.ones(DIM), k=1)
        assert time.monotonic() - started < 15
        store.close()
        port = int(uri.rsplit(":", 1)[1])
        process, uri = start_milvus_server(tmp_path / "data", port=port)
        with MotionStore(uri, "restart") as again:  # data persisted in the server's data dir
            assert again.count() == 8
            assert again.search(table.embedding.iloc[2], k=1)[0][0].clip_id == table.clip_id.iloc[2]
    finally:
        stop_milvus_server(process)
