"""MotionStore on real Milvus Lite files (tmp_path). The core checks also run against a real server
(tests/test_store_server.py imports CORE_CHECKS)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from conftest import RANDOM_ENCODER_ID, make_random_table

from motionmatch.index import schema
from motionmatch.errors import EncoderMismatchError, ParameterError, StoreError
from motionmatch.index.filters import build_filter, quote_string
from motionmatch.index.schema import IndexConfig
from motionmatch.index.store import MotionStore
from motionmatch.table import make_clip_id

PREPROCESSING = {"resize": 16, "mean": [0.5, 0.5, 0.5], "frames": 4}
DIM = 16
TRICKY_LABELS = ('a"b', "a\\b", 'x" or 1==1 or label == "', "x' or 1==1 or label == '", "line\nbreak",
                 "tab\there", "é日本😀", "ends with backslash\\", '\\"', "'", "cr\rx")


def _open(uri: str, collection: str, n: int = 32, seed: int = 0, **table_options) -> tuple[MotionStore, pd.DataFrame]:
    """A store holding a fresh random table (collection recreated)."""
    table = make_random_table(n, DIM, seed=seed, **table_options)
    store = MotionStore(uri, collection)
    extra = {c: len(table[c].iloc[0]) for c in table_options.get("extra_vectors", {})}
    store.ensure_collection(RANDOM_ENCODER_ID, DIM, PREPROCESSING, extra_vectors=extra or None, recreate=True)
    store.upsert(table, batch_size=10, progress=False)
    return store, table


def _cosines(table: pd.DataFrame, query: np.ndarray, column: str = "embedding") -> np.ndarray:
    return np.stack(table[column].to_numpy()) @ query


# ----------------------------------------------------------------------------- checks shared with the server file
def check_create_is_idempotent_and_refuses_other_encoders(uri: str, collection: str) -> None:
    with MotionStore(uri, collection) as store:
        first = store.ensure_collection(RANDOM_ENCODER_ID, DIM, PREPROCESSING, recreate=True)
        again = store.ensure_collection(RANDOM_ENCODER_ID, DIM, dict(reversed(PREPROCESSING.items())))
        assert first == again and first["encoder_id"] == RANDOM_ENCODER_ID and first["dim"] == DIM
        assert again["preprocessing"] == PREPROCESSING and again["index_type"] == schema.DEFAULT_INDEX_TYPE
        properties = store.client.describe_collection(collection)["properties"]
        assert properties["motionmatch.encoder_id"] == RANDOM_ENCODER_ID and properties["motionmatch.dim"] == str(DIM)

        with pytest.raises(EncoderMismatchError, match=f"(?s){collection}.*other:enc.*{RANDOM_ENCODER_ID}.*--recreate"):
            store.ensure_collection("other:enc", DIM, PREPROCESSING)
        with pytest.raises(EncoderMismatchError, match="dimension 32 but the collection holds 16"):
            store.ensure_collection(RANDOM_ENCODER_ID, 32, PREPROCESSING)
        with pytest.raises(EncoderMismatchError, match="resize: asked 32, held 16"):
            store.ensure_collection(RANDOM_ENCODER_ID, DIM, {**PREPROCESSING, "resize": 32})
        with pytest.raises(EncoderMismatchError, match="visual"):
            store.ensure_collection(RANDOM_ENCODER_ID, DIM, PREPROCESSING, extra_vectors={"visual": 8})

        table = make_random_table(8, DIM)
        with pytest.raises(EncoderMismatchError, match="other:enc"):
            store.upsert(table, encoder_id="other:enc", progress=False)
        with pytest.raises(EncoderMismatchError, match="other:enc"):
            store.upsert(table.assign(encoder_id="other:enc"), progress=False)
        with pytest.raises(EncoderMismatchError, match="8-d vectors"):
            store.upsert(make_random_table(8, 8), progress=False)
        with pytest.raises(EncoderMismatchError, match="preprocessing"):
            store.search(np.ones(DIM), preprocessing={"resize": 99})
        with pytest.raises(EncoderMismatchError, match="4-d but field 'embedding'"):
            store.search(np.ones(4))
        assert store.count() == 0  # nothing was written by the refused calls

        recreated = store.ensure_collection("other:enc", 8, {}, recreate=True)
        assert recreated["encoder_id"] == "other:enc" and recreated["dim"] == 8


def check_upsert_is_idempotent_and_self_query_comes_first(uri: str, collection: str) -> None:
    store, table = _open(uri, collection, n=40)
    with store:
        assert store.count() == 40
        assert store.upsert(table, batch_size=7, progress=False) == 40
        assert store.count() == 40
        queries = np.stack(table.embedding.iloc[[0, 13, 39]].to_numpy())
        results = store.search(queries, k=5)
        assert [hits[0].clip_id for hits in results] == table.clip_id.iloc[[0, 13, 39]].tolist()
        for hits, query in zip(results, queries):
            assert hits[0].score == pytest.approx(1.0, abs=1e-4)
            expected = np.sort(_cosines(table, query))[::-1][:5]
            np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-4)
        first, row = results[0][0], table.iloc[0]
        assert (first.video_path, first.clip_index, first.label, first.domain, first.group, first.split) == \
            (row.video_path, row.clip_index, row.label, row.domain, row.group, row.split)
        assert (first.start_s, first.end_s) == pytest.approx((row.start_s, row.end_s))

        # one hit per video, and they are the best clip of the best videos (brute force)
        grouped = store.search(queries[0], k=4, group_by_video=True)[0]
        scores = table.assign(score=_cosines(table, queries[0]))
        best = scores.sort_values("score", ascending=False).drop_duplicates("video_path").head(4)
        assert [h.clip_id for h in grouped] == best.clip_id.tolist()
        assert len({h.video_path for h in grouped}) == 4

        # the query's own video can be left out, per query
        own = table.video_path.iloc[[0, 13, 39]].tolist()
        excluded = store.search(queries, k=10, exclude_video=own)
        for hits, path in zip(excluded, own):
            assert len(hits) == 10 and path not in {h.video_path for h in hits}


def check_filters_restrict_results_exactly(uri: str, collection: str) -> None:
    store, table = _open(uri, collection, n=36)
    with store:
        query = table.embedding.iloc[5]
        filters = {"domain": "studio", "label": ["walk", "jump"]}
        hits = store.search(query, k=100, filters=filters)[0]
        expected = table[(table.domain == "studio") & table.label.isin(["walk", "jump"])]
        assert 0 < len(expected) < len(table)
        assert {h.clip_id for h in hits} == set(expected.clip_id)
        assert all(h.domain == "studio" and h.label in ("walk", "jump") for h in hits)

        ranged = store.search(query, k=100, filters={"clip_index": (1, 2), "start_s": (None, 1.6)})[0]
        assert {h.clip_id for h in ranged} == set(table[table.clip_index == 1].clip_id)
        assert store.search(query, k=100, filters={"label": []})[0] == []


def check_injection_attempts_neither_fail_nor_widen(uri: str, collection: str) -> None:
    labels = (*TRICKY_LABELS, "walk")
    store, table = _open(uri, collection, n=4 * len(labels), labels=labels)
    with store:
        query = table.embedding.iloc[0]
        for label in labels:
            hits = store.search(query, k=100, filters={"label": label})[0]
            assert {h.clip_id for h in hits} == set(table[table.label == label].clip_id), repr(label)
            assert {h.label for h in hits} == {label}
        attacks = ['walk" or label != "', "walk\" || 1==1 || \"", 'walk") or (1==1', "walk\\", 'walk\\" or 1==1 #',
                   "walk\nor 1==1", 'nothing" or clip_index >= 0 or label == "']
        for attack in attacks:
            assert store.search(query, k=100, filters={"label": attack})[0] == [], repr(attack)
            assert store.search(query, k=100, filters={"label": [attack, "walk"]})[0] != []
        path = table.video_path.iloc[0]
        hits = store.search(query, k=100, exclude_video=path + '" or video_path != "')[0]
        assert len(hits) == len(table)  # nothing matched the odd path, so nothing was excluded


def check_hybrid_search_fuses_both_fields(uri: str, collection: str) -> None:
    store, table = _open(uri, collection, n=24, extra_vectors={"visual": 8})
    with store:
        row = 3
        queries = {"embedding": table.embedding.iloc[row], "visual": table.visual.iloc[row]}
        motion, visual = _cosines(table, queries["embedding"]), _cosines(table, queries["visual"], "visual")
        motion_rank = np.argsort(np.argsort(-motion)) + 1
        visual_rank = np.argsort(np.argsort(-visual)) + 1
        expected_rrf = dict(zip(table.clip_id, 1 / (60 + motion_rank) + 1 / (60 + visual_rank)))
        hits = store.hybrid_search(queries, k=6, ranker="rrf", candidate_k=24)[0]
        assert hits[0].clip_id == table.clip_id.iloc[row] and len(hits) == 6
        for hit in hits:
            assert hit.score == pytest.approx(expected_rrf[hit.clip_id], abs=1e-6)
        assert [h.score for h in hits] == pytest.approx(sorted(expected_rrf.values(), reverse=True)[:6], abs=1e-6)

        expected_weighted = dict(zip(table.clip_id, 0.8 * motion + 0.2 * visual))
        weighted = store.hybrid_search(queries, k=6, ranker="weighted", weights=[0.8, 0.2], candidate_k=24)[0]
        assert [h.clip_id for h in weighted] == sorted(expected_weighted, key=expected_weighted.get, reverse=True)[:6]
        for hit in weighted:
            assert hit.score == pytest.approx(expected_weighted[hit.clip_id], abs=1e-4)

        filtered = store.hybrid_search(queries, k=50, filters={"domain": "street"})[0]
        assert {h.clip_id for h in filtered} == set(table[table.domain == "street"].clip_id)
        visual_only = store.search(queries["visual"], k=1, anns_field="visual")[0]
        assert visual_only[0].clip_id == table.clip_id.iloc[row]
        with pytest.raises(ParameterError, match="ranker"):
            store.hybrid_search(queries, ranker="max")
        with pytest.raises(ParameterError, match="weights"):
            store.hybrid_search(queries, ranker="weighted", weights=[1.0])
        with pytest.raises(ParameterError, match="vector fields"):
            store.hybrid_search({"embedding": queries["embedding"], "nope": queries["visual"]})


def check_arrays_round_trip_and_detect_tampering(uri: str, collection: str) -> None:
    store, _ = _open(uri, collection, n=8)
    with store:
        rng = np.random.default_rng(3)
        whitening = rng.standard_normal((300, 160)).astype(np.float32)  # 192 kB: several chunks
        mean = rng.standard_normal(160)  # float64
        counts = np.arange(12, dtype=np.int64).reshape(3, 4)
        for name, array in {"pca.whitening": whitening, "pca.mean": mean, "counts": counts}.items():
            store.save_array(name, array)
        assert sorted(store.list_arrays()) == ["counts", "pca.mean", "pca.whitening"]
        assert store.list_arrays()["pca.whitening"]["shape"] == [300, 160]
        for name, array in {"pca.whitening": whitening, "pca.mean": mean, "counts": counts}.items():
            loaded = store.load_array(name)
            assert loaded.dtype == array.dtype and loaded.shape == array.shape and np.array_equal(loaded, array)

        smaller = whitening[:10, :5].copy()  # replacing with fewer chunks leaves no stale rows
        store.save_array("pca.whitening", smaller)
        assert np.array_equal(store.load_array("pca.whitening"), smaller)

        with MotionStore(uri, collection) as other:  # another client sees the same arrays
            assert np.array_equal(other.load_array("counts"), counts)

        row = store.client.query(store.arrays_collection, filter='key == "counts:000000"', output_fields=["*"])[0]
        row["data"] = row["data"][:-4] + ("AAAA" if row["data"][-4:] != "AAAA" else "BBBB")
        store.client.upsert(store.arrays_collection, [row])
        with pytest.raises(StoreError, match="counts.*corrupt.*save it again"):
            store.load_array("counts")

        assert store.delete_array("counts") and not store.delete_array("counts")
        with pytest.raises(StoreError, match="no array 'counts'.*pca.mean"):
            store.load_array("counts")
        with pytest.raises(ParameterError, match="numeric"):
            store.save_array("names", np.array(["a", "b"], dtype=object))
        with pytest.raises(ParameterError, match="array name"):
            store.save_array("bad name!", counts)


def check_delete_videos_and_read_back(uri: str, collection: str) -> None:
    store, table = _open(uri, collection, n=20)
    with store:
        videos = store.videos()
        assert list(videos.columns) == ["video_path", "video_fingerprint", "n_clips"]
        assert len(videos) == table.video_path.nunique() and set(videos.n_clips) == {4}
        fetched = store.fetch_table()
        # the schema's optional coverage column reads back as 1.0 for a table written without it
        assert [c for c in fetched.columns if c != "coverage"] == list(table.columns)
        assert "coverage" not in table.columns and set(fetched.pop("coverage")) == {1.0}
        expected = table.sort_values(["video_path", "clip_index"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(fetched.drop(columns="embedding"), expected.drop(columns="embedding"),
                                      check_dtype=False)
        np.testing.assert_allclose(np.stack(fetched.embedding), np.stack(expected.embedding), atol=1e-7)

        gone = table.video_path.unique()[:2].tolist()
        assert store.delete_videos(gone + ["/not/stored.mp4"]) == 8
        assert store.count() == 12 and not set(gone) & set(store.videos().video_path)
        assert store.delete_videos(gone) == 0


CORE_CHECKS = [check_create_is_idempotent_and_refuses_other_encoders,
               check_upsert_is_idempotent_and_self_query_comes_first, check_filters_restrict_results_exactly,
               check_injection_attempts_neither_fail_nor_widen, check_hybrid_search_fuses_both_fields,
               check_arrays_round_trip_and_detect_tampering, check_delete_videos_and_read_back]


@pytest.mark.parametrize("check", CORE_CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_core_on_milvus_lite(check, tmp_db_uri):
    check(tmp_db_uri, "clips")


# ----------------------------------------------------------------------------- Lite-only and pure checks
def test_reopened_file_is_searchable(tmp_db_uri):
    store, table = _open(tmp_db_uri, "clips", n=12)
    store.save_array("pca.mean", np.arange(4.0))
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.count()
    with MotionStore(tmp_db_uri, "clips") as reopened:  # collections come back released; the store loads them
        assert reopened.count() == 12
        assert reopened.search(table.embedding.iloc[7], k=1)[0][0].clip_id == table.clip_id.iloc[7]
        assert np.array_equal(reopened.load_array("pca.mean"), np.arange(4.0))
        assert reopened.encoder_info()["preprocessing"] == PREPROCESSING


def test_locked_file_points_to_server_mode(tmp_db_uri):
    MotionStore(tmp_db_uri, "clips").close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from motionmatch.index.store import MotionStore
        store = MotionStore({tmp_db_uri!r}, "clips")
        print("open", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match=r"another process has .*test\.db open.*milvus-lite server --data-dir"
                                              r".*--milvus-uri http://127\.0\.0\.1:19530"):
            MotionStore(tmp_db_uri, "clips")
    finally:
        holder.communicate("", timeout=30)
    with MotionStore(tmp_db_uri, "clips") as store:  # released once the other process is gone
        assert store.count() == 0


def test_closing_the_store_frees_the_file_for_other_processes(tmp_db_uri):
    store, _ = _open(tmp_db_uri, "clips", n=8)
    store.close()
    count = subprocess.run([sys.executable, "-c", "from motionmatch.index.store import MotionStore; "
                            f"print(MotionStore({tmp_db_uri!r}, 'clips').count())"],
                           capture_output=True, text=True, timeout=60)
    assert count.stdout.strip() == "8", count.stderr[-2000:]


def test_bad_parameters_fail_before_any_work(tmp_db_uri):
    with pytest.raises(ParameterError, match=r"must end in \.db"):
        MotionStore(tmp_db_uri.removesuffix(".db") + ".sqlite")
    with pytest.raises(ParameterError, match="unknown scheme"):
        MotionStore("ftp://host:19530")
    with pytest.raises(ParameterError, match="collection name"):
        MotionStore(tmp_db_uri, "bad-name")
    store, table = _open(tmp_db_uri, "clips", n=8)
    with store:
        for k in (0, -3, 1.5, True):
            with pytest.raises(ParameterError, match="k must be"):
                store.search(table.embedding.iloc[0], k=k)
        with pytest.raises(ParameterError, match="unknown filter field 'colour'.*domain.*label"):
            store.search(table.embedding.iloc[0], filters={"colour": "red"})
        with pytest.raises(ParameterError, match="batch_size"):
            store.upsert(table, batch_size=0)
        with pytest.raises(ParameterError, match="lacks columns.*video_path"):
            store.upsert(table.drop(columns="video_path"))
        with pytest.raises(ParameterError, match="duplicate clip_id"):
            store.upsert(pd.concat([table, table.head(1)]), progress=False)
        with pytest.raises(ParameterError, match="not a vector field"):
            store.search(table.embedding.iloc[0], anns_field="label")
        assert store.count() == 8
    with MotionStore(tmp_db_uri, "never_created") as empty:
        assert empty.count() == 0 and len(empty.videos()) == 0
        with pytest.raises(StoreError, match="never_created' does not exist.*motionmatch index"):
            empty.search(np.ones(DIM))


def test_build_filter_escapes_values_and_checks_fields():
    assert build_filter(None) == "" and build_filter({}) == ""
    assert build_filter({"domain": "studio", "label": ["a", 'b"c']}) == \
        '(domain == "studio") and (label in ["a", "b\\"c"])'
    assert build_filter({"clip_index": (1, None), "end_s": 2}) == "(clip_index >= 1) and (end_s == 2.0)"
    assert quote_string('a\\"\n\t\r') == '"a\\\\\\"\\n\\t\\r"'
    with pytest.raises(ParameterError, match="expects a number"):
        build_filter({"clip_index": "1 or 1==1"})
    with pytest.raises(ParameterError, match="whole number"):
        build_filter({"clip_index": 1.5})
    with pytest.raises(ParameterError, match="expects text"):
        build_filter({"label": 3})
    with pytest.raises(ParameterError, match="range"):
        build_filter({"label": ("a", "b")})
    with pytest.raises(ParameterError, match="unknown filter field 'label or 1==1'"):
        build_filter({"label or 1==1": "x"})


def test_clip_ids_are_deterministic():
    first = make_clip_id("/v/a.mp4", 2, "flow:v1")
    assert first == make_clip_id("/v/a.mp4", 2, "flow:v1") and len(first) == 40
    assert set(first) <= set("0123456789abcdef")  # a hex digest
    assert len({first, make_clip_id("/v/a.mp4", 3, "flow:v1"), make_clip_id("/v/b.mp4", 2, "flow:v1"),
                make_clip_id("/v/a.mp4", 2, "vjepa2:x")}) == 4


def test_upsert_derives_missing_clip_ids(tmp_db_uri):
    table = make_random_table(8, DIM)
    with MotionStore(tmp_db_uri, "clips") as store:
        store.ensure_collection(RANDOM_ENCODER_ID, DIM, PREPROCESSING)
        store.upsert(table.drop(columns="clip_id"), progress=False)
        assert set(store.fetch_table(["clip_id"]).clip_id) == set(table.clip_id)



def test_store_defaults_are_the_search_benchmarks_winner():
    """The index the package builds by default is the one bench/RESULTS.md recommends (issue 5)."""
    import json
    import re
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "bench" / "RESULTS.md"
    match = re.search(r"RECOMMENDED = (\{.*?\})`", results.read_text(encoding="utf-8"))
    assert match, "bench/RESULTS.md holds no `RECOMMENDED = {...}` line: run `make bench`"
    recommended = json.loads(match.group(1))
    index_type = recommended["index_type"]
    assert schema.DEFAULT_INDEX_TYPE == index_type
    assert schema.DEFAULT_INDEX_PARAMS[index_type] == recommended["params"]
    assert schema.DEFAULT_SEARCH_PARAMS[index_type] == recommended["search_params"]
    default = IndexConfig()  # what MotionStore() uses when given no index configuration
    assert (default.index_type, dict(default.index_params), dict(default.search_params)) == \
        (index_type, recommended["params"], recommended["search_params"])


def test_index_configuration_is_checked_once_in_the_constructor(tmp_db_uri):
    assert IndexConfig("hnsw", {"M": 8}).index_params == {"M": 8, "efConstruction": 100}
    assert IndexConfig("IVF_FLAT", search_params={"nprobe": 4}).search_params_for("IVF_FLAT", 10)["params"] == {"nprobe": 4}
    assert IndexConfig(search_params={"ef": 16}).search_params_for("HNSW", 50)["params"] == {"ef": 50}  # ef >= k
    assert IndexConfig().search_params_for("FLAT", 10)["params"] == {}  # a collection indexed elsewhere
    for bad, match in [(dict(index_type="ANNOY"), "index_type must be one of"),
                       (dict(index_params={"nlist": 8}), r"index_params \['nlist'\] do not apply to a HNSW index"),
                       (dict(search_params={"ef": 0}), r"search_params\['ef'\] must be >= 1"),
                       (dict(search_params={"ef": True}), "whole number"),
                       (dict(index_params=[("M", 8)]), "must be a dict")]:
        with pytest.raises(ParameterError, match=match):
            IndexConfig(**bad)
    for bad, match in [(dict(timeout_s=0), "timeout_s"), (dict(timeout_s=True), "timeout_s"),
                       (dict(index={"index_type": "FLAT"}), "IndexConfig"), (dict(collection="no spaces"), "not valid")]:
        with pytest.raises(ParameterError, match=match):
            MotionStore(tmp_db_uri, **{"collection": "clips", **bad})
    table = make_random_table(40, DIM, seed=3)
    with MotionStore(tmp_db_uri, "flat_clips", index=IndexConfig("FLAT")) as store:
        assert store.ensure_collection(RANDOM_ENCODER_ID, DIM, PREPROCESSING)["index_type"] == "FLAT"
        store.upsert(table, progress=False)
        query = np.asarray(table.embedding.iloc[5])
        hits = store.search(query, k=5)[0]
        expected = np.argsort(-_cosines(table, query), kind="stable")[:5]  # FLAT is exact: numpy is the oracle
        assert [h.clip_id for h in hits] == list(table.clip_id.iloc[expected])
