"""Search by time range (motionmatch.search.range) on real parts: tiny long videos, FlowEncoder, Milvus Lite.

The gallery: 3 synthetic long videos (30 s, 96x72, 12 fps) cut into 29 windows each (12 frames every
2nd frame = 1.9 s, one every ~1 s), indexed in a temporary Milvus Lite file. Copy queries are 6 s
ranges of labelled segments, re-encoded (long_synthetic.write_copy_queries).
"""
from __future__ import annotations

import contextlib
import io

import functools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motionmatch.video.clips import ClipSpec
from motionmatch.encoders import build_encoder
from motionmatch.errors import ParameterError, VideoError
from motionmatch.metrics.localization import temporal_iou
from motionmatch.data import read_query_list, write_same_motion_queries
from motionmatch.evaluation import evaluate_search
from motionmatch.index import MotionStore
from motionmatch.refine.zscore import fit_gallery_calibration, gallery_moments
from motionmatch.search import SegmentSearchConfig as Config
from motionmatch.search import search_range
from motionmatch.video import plan_query

SPEC = ClipSpec(frames_per_clip=12, frame_stride=2, clips_per_video=29)
N_QUERIES = 6


@functools.lru_cache(maxsize=1)
def long_gallery(root: str) -> dict:
    """Videos, their embeddings table and copy queries under ``root`` (built once per session)."""
    from motionmatch.data.sources import load_source
    from motionmatch.data.long_synthetic import generate_long_videos
    from motionmatch.data import write_copy_queries
    from motionmatch.extract.local import extract_embeddings
    from motionmatch.table import load_embeddings, read_extract_meta

    root_path = Path(root)
    videos, embeddings = root_path / "videos", root_path / "embeddings"
    generate_long_videos(videos, n_videos=3, duration_s=30, fps=12, size=(96, 72), min_segment_s=4, max_segment_s=10,
                         progress=False)
    manifest, _ = load_source(videos)
    extract_embeddings(manifest, build_encoder("flow"), embeddings, clip_spec=SPEC, progress=False, workers=0,
                       print_fn=lambda *_: None)
    write_copy_queries(videos, n_queries=N_QUERIES, query_s=6.0, seed=0)
    return {"videos": videos, "table": load_embeddings(embeddings), "meta": read_extract_meta(embeddings),
            "queries": pd.read_csv(videos / "queries.csv"), "relevant": videos / "relevant.csv"}


def open_index(gallery: dict, uri: str) -> MotionStore:
    """A store at ``uri`` holding the gallery (index_embeddings, as `motionmatch index` does)."""
    from motionmatch.index.sync import index_embeddings

    store = MotionStore(uri, "long")
    meta = gallery["meta"]
    index_embeddings(gallery["table"], store, encoder_id=meta["encoder_id"], preprocessing=meta["preprocessing"],
                     clip_spec=meta["clip_spec"])
    return store


@pytest.fixture(scope="session")
def gallery(tmp_path_factory):
    return long_gallery(str(tmp_path_factory.mktemp("long_gallery")))


@pytest.fixture
def store(gallery, tmp_db_uri):
    with open_index(gallery, tmp_db_uri) as opened:
        yield opened


class CountingEncoder:
    """The real FlowEncoder, counting encode calls (to show bad input fails before any embedding)."""

    def __init__(self):
        self.inner, self.calls = build_encoder("flow"), 0
        self.encoder_id, self.dim, self.frames_per_clip = self.inner.encoder_id, self.inner.dim, self.inner.frames_per_clip

    def preprocessing(self):
        return self.inner.preprocessing()

    def encode(self, clips, batch_size=8):
        self.calls += 1
        return self.inner.encode(clips, batch_size=batch_size)


def test_copy_queries_find_their_source_range(gallery, store):
    """Each copy query's segment in its source video overlaps the copied range, with tIoU >= 0.5 for all but one
    (measured: 0.47-0.96 on these 6; overlapping alternatives in one video are dropped, so a copy keeps one
    segment there); the top-1 segment is the right one for most (FlowEncoder confuses videos that show the same
    motion class)."""
    top_hits, good = 0, 0
    for query in gallery["queries"].itertuples():
        # segments as aligned: growth along a continuing motion (the default, extend_margin) trades copy tIoU for
        # same-motion recall; bench/bench_localize.py measures that trade on dense windows
        result = search_range(store, gallery["videos"] / query.path, config=Config(k=10, extend_margin=None))
        assert result.excluded == ()  # a re-encoded copy is another file: nothing of the gallery is left out
        source = [s for s in result.segments if s.video_path == str(gallery["videos"] / query.video)]
        assert source, f"{query.query_id}: no segment in {query.video}"
        ious = temporal_iou([[s.start_s, s.end_s] for s in source], [[query.start_s, query.end_s]])[:, 0]
        assert ious.max() >= 0.3, (query.query_id, [(s.start_s, s.end_s) for s in source], query.start_s)
        good += ious.max() >= 0.5
        best = source[int(np.argmax(ious))]
        assert len(best.hits) >= 2 and all(h.video_path == best.video_path for h in best.hits)
        assert best.query_start_s >= 0 and best.query_end_s <= result.query.end_s + 1e-6
        top = result.segments[0]
        top_hits += top.video_path == best.video_path and temporal_iou(
            [[top.start_s, top.end_s]], [[query.start_s, query.end_s]])[0, 0] >= 0.5
    assert top_hits >= N_QUERIES // 2 and good >= N_QUERIES - 1


def test_hits_only_alignment_finds_the_same_copy(gallery, store):
    """fetch_windows=False aligns the Milvus hits alone (no fetch): on this gallery the top segment is the same."""
    query = gallery["queries"].iloc[0]
    full = search_range(store, gallery["videos"] / query.path, config=Config(k=10))
    fast = search_range(store, gallery["videos"] / query.path, config=Config(k=10, fetch_windows=False))
    assert (fast.segments[0].video_path, fast.segments[0].start_s) == (full.segments[0].video_path,
                                                                        full.segments[0].start_s)
    assert fast.candidates["n_windows"].sum() < full.candidates["n_windows"].sum()  # fewer windows were scored


def test_query_windows_follow_the_collection_clip_spec(gallery, store):
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    plan = plan_query(query, SPEC, 1.0, 5.5)
    fps = 12.0
    assert plan.window_s == pytest.approx(SPEC.span_frames / fps)
    assert plan.stride_s == pytest.approx(plan.window_s)  # clips-per-video mode: one window length
    starts = [w.start_s for w in plan.windows]
    assert starts[0] == pytest.approx(1.0) and all(len(w.frame_indices) == SPEC.frames_per_clip for w in plan.windows)
    assert plan.windows[-1].end_s == pytest.approx(5.5, abs=1 / fps)  # a last window ends at the range's end
    dense = plan_query(query, SPEC, 1.0, 5.5, stride_s=0.5)  # a dense collection's recorded stride
    assert np.diff([w.start_s for w in dense.windows])[:-1] == pytest.approx(0.5, abs=1 / fps)


def test_own_file_is_excluded_by_default_when_indexed(gallery, store):
    own = gallery["videos"] / "long_000.mp4"
    default = search_range(store, own, 20.0, 26.0, Config(k=10))
    assert default.excluded == (str(own),)
    assert all(s.video_path != str(own) for s in default.segments)
    assert all(h.video_path != str(own) for hits in default.window_hits for h in hits)
    assert any("indexed" in note for note in default.notes)
    kept = search_range(store, own, 20.0, 26.0, Config(k=10), exclude_video=False)
    top = kept.segments[0]  # the range finds itself when its own file is kept
    assert top.video_path == str(own)
    assert temporal_iou([[top.start_s, top.end_s]], [[20.0, 26.0]])[0, 0] >= 0.5


def test_z_scores_make_two_queries_comparable(gallery, store):
    """Raw cosines of two queries against the gallery sit at different levels (FlowEncoder: means 0.44 vs
    0.75 measured); the z-scores from the gallery whitening have mean 0 and sd 1 for both, checked against
    the empirical distribution over every stored window. Pooled over queries, µAP rises."""
    calibration = fit_gallery_calibration(store, max_videos=10)
    gallery_vectors = np.stack(store.fetch_table(["embedding"])["embedding"].to_numpy()).astype(np.float64)
    levels = []
    for path in gallery["queries"].path.iloc[:2]:
        vectors = search_range(store, gallery["videos"] / path, config=Config(segments=False)).vectors.astype(np.float64)
        cosine = vectors @ gallery_vectors.T
        mean, sd = gallery_moments(calibration, vectors)
        np.testing.assert_allclose(mean, cosine.mean(axis=1), atol=1e-6)
        np.testing.assert_allclose(sd, cosine.std(axis=1, ddof=1), rtol=0.02)  # 64 principal axes: within 2 %
        z = (cosine - mean[:, None]) / sd[:, None]
        np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-6)
        levels.append(cosine.mean())
    assert abs(levels[0] - levels[1]) > 0.05  # the raw levels differ...
    queries, relevant = read_query_list(gallery["relevant"])
    uap = {}
    for name, options in {"raw": {"calibration": None}, "z": {"calibration": calibration}}.items():
        metrics, predictions, _ = evaluate_search(store, queries, relevant, Config(**options), n_boot=0)
        uap[name] = float(metrics.set_index("metric").loc["segment_uAP", "value"])
        assert len(predictions) and set(predictions["query_id"]) <= set(queries["query_id"])
    assert uap["z"] > uap["raw"], uap  # ... and one ranking across queries works better on z-scores


@pytest.mark.parametrize("start, end, message", [
    (5.0, 5.0, "must be before --end"),
    (6.0, 2.0, "must be before --end"),
    (-1.0, 2.0, "--start (seconds) must be >= 0"),
    (1.0, float("inf"), "--end (seconds) must be a finite number"),
    (100.0, None, "is past the end"),
    (0.0, 90.0, "--end 90 s is past the end"),
])
def test_bad_ranges_fail_before_any_embedding(gallery, store, start, end, message):
    encoder = CountingEncoder()
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    with pytest.raises(ParameterError, match=re.escape(message)):
        search_range(store, query, start, end, encoder=encoder)
    assert encoder.calls == 0


def test_unreadable_query_fails_before_any_embedding(store, tmp_path):
    encoder = CountingEncoder()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    for path in (broken, tmp_path / "missing.mp4"):
        with pytest.raises(VideoError):
            search_range(store, path, encoder=encoder)
    assert encoder.calls == 0


def test_short_range_and_short_video_are_padded_with_a_note(gallery, store, tmp_path):
    from motionmatch.video import write_video

    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    short = search_range(store, query, 2.0, 2.5, Config(k=5))
    assert len(short.query.windows) == 1 and any("shorter than one window" in n for n in short.notes)
    assert short.query.end_s - short.query.start_s == pytest.approx(SPEC.span_frames / 12.0, abs=1e-6)
    assert short.segments and all(np.isfinite(s.score) for s in short.segments)  # one window: merged hits
    frames = np.random.default_rng(0).integers(0, 255, size=(10, 72, 96, 3), dtype=np.uint8)
    tiny = write_video(tmp_path / "tiny.mp4", frames, 12.0)
    padded = search_range(store, tiny, config=Config(k=5))
    assert padded.query.windows[0].padded_frames > 0 and any("no full window" in n for n in padded.notes)


def test_same_motion_queries_target_other_videos_and_are_scored_by_kind(gallery, store):
    all_relevant = write_same_motion_queries(gallery["videos"], n_queries=3, query_s=4.0, seed=0)
    queries, relevant = read_query_list(all_relevant, gallery["videos"] / "all_queries.csv")
    same = queries[queries["kind"] == "same_motion"]
    assert len(same) == 3 and (queries["kind"] == "copy").sum() == N_QUERIES
    truth = pd.read_csv(gallery["videos"] / "ground_truth.csv")
    for query in same.itertuples():
        targets = relevant[relevant["query_id"] == query.query_id]
        assert len(targets) and not (targets["video"] == query.path).any()  # never the query's own (excluded) file
        labels = {truth.loc[(truth["video"] == Path(t.video).name) & (truth["start_s"] == t.start_s), "label"].item()
                  for t in targets.itertuples()}
        assert labels == {query.label}
    metrics, predictions, _ = evaluate_search(store, queries[queries["kind"] == "same_motion"],
                                              relevant[relevant["query_id"].isin(same["query_id"])], n_boot=0)
    assert set(metrics["kind"]) == {"same_motion"} and len(predictions)
    assert not (predictions["video"] == predictions["query_id"].map(dict(zip(same.query_id, same.path)))).any()


def test_phase_plans_shift_every_window_inside_the_file(gallery):
    from motionmatch.video.windows import phase_plans

    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    plan = plan_query(query, SPEC, 1.0, 5.5)
    shifted = phase_plans(plan, SPEC.frame_stride)
    assert len(shifted) == SPEC.frame_stride - 1 and plan.n_frames > 0
    for shift, other in enumerate(shifted, start=1):
        for base, moved in zip(plan.windows, other.windows):
            assert np.array_equal(np.asarray(moved.frame_indices), np.asarray(base.frame_indices) + shift)
    whole = plan_query(query, SPEC, None, None)
    for shift, other in enumerate(phase_plans(whole, 8), start=1):  # near the file's end a window may not move
        for base, moved in zip(whole.windows, other.windows):
            assert max(moved.frame_indices) < whole.n_frames
            assert moved == base or moved.frame_indices[0] == base.frame_indices[0] + shift
        assert other.windows[0] != whole.windows[0]
    assert phase_plans(plan, 1) == []


def test_gallery_calibration_is_stored_with_the_collection_and_refitted_when_stale(gallery, store):
    from motionmatch.refine.zscore import load_gallery_calibration, save_gallery_calibration
    from motionmatch.index.sync import index_embeddings

    missing, note = load_gallery_calibration(store)
    assert "stores no gallery calibration" in note and "refitted" in note
    saved = save_gallery_calibration(store)
    loaded, note = load_gallery_calibration(store)
    assert "stored with collection" in note and "refitted" not in note
    for name in ("mean_", "components_", "explained_variance_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(saved, name))
    np.testing.assert_allclose(loaded.mean_, missing.mean_, atol=1e-6)  # the same fit as an on-the-fly one
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    assert any("stored with collection" in n for n in search_range(store, query, config=Config(k=5)).notes)
    meta, table = gallery["meta"], gallery["table"]
    extra = table[table["video_path"] == table["video_path"].iloc[0]].copy()
    extra["video_path"] = extra["video_path"] + ".copy.mp4"  # the collection grows: the stored fit is stale
    extra["clip_id"] = extra["clip_id"] + "-copy"
    index_embeddings(extra, store, encoder_id=meta["encoder_id"], preprocessing=meta["preprocessing"],
                     clip_spec=meta["clip_spec"])
    _, note = load_gallery_calibration(store)
    assert "stale" in note and "refitted" in note


def test_index_command_stores_the_calibration_that_search_loads(gallery, tmp_db_uri, capsys):
    """`motionmatch index` fits the gallery calibration once and stores it; `search --segments` then says it
    loaded it (no refit), and `--as-aligned` keeps segments no longer than the aligned windows."""
    from motionmatch import cli
    from motionmatch.refine.zscore import load_gallery_calibration

    embeddings = gallery["videos"].parent / "embeddings"
    assert cli.main(["index", "--embeddings", str(embeddings), "--milvus-uri", tmp_db_uri, "--collection", "long"]) == 0
    assert "stored with collection 'long'" in capsys.readouterr().out
    with MotionStore(tmp_db_uri, "long") as opened:
        calibration, note = load_gallery_calibration(opened)
        assert "refitted" not in note and calibration.n_fitted_ == len(gallery["table"])
    query = str(gallery["videos"] / gallery["queries"].path.iloc[0])
    for extra in ([], ["--as-aligned"]):
        assert cli.main(["search", query, "--segments", "--json", "--milvus-uri", tmp_db_uri,
                         "--collection", "long", *extra]) == 0
        captured = capsys.readouterr()
        assert "stored with collection 'long'" in captured.err and "refitted" not in captured.err
        if extra:
            import json

            window = float(gallery["table"]["end_s"].iloc[0] - gallery["table"]["start_s"].iloc[0])
            segments = json.loads(captured.out)
            assert segments and all(s["end_s"] - s["start_s"] <= 4 * window for s in segments)


# ----------------------------------------------------------------------------- query ranges that cross a shot cut
@functools.lru_cache(maxsize=1)
def _detected(video: Path) -> tuple[float, ...]:
    from motionmatch.video.shots import detect_shots

    return tuple(shot.start_s for shot in detect_shots(video, "content")[1:])


def _planted_cut(gallery) -> tuple[Path, float]:
    """A gallery video and one of its planted hard cuts, >= 3 s from the ends, that the content detector finds
    in the whole file (at 96x72 it misses some: that is the detector's business, not the query's)."""
    cuts = pd.read_csv(gallery["videos"] / "cuts.csv")
    for row in cuts[(cuts.time_s > 3.0) & (cuts.time_s < 27.0)].itertuples():
        video = gallery["videos"] / row.video
        if any(abs(t - row.time_s) <= 1 / 12 + 1e-6 for t in _detected(video)):
            return video, float(row.time_s)
    raise AssertionError(f"no planted cut of the seeded gallery is found by the content detector: {cuts}")


def _straddles(window, cut_frame: int) -> bool:
    return min(window.frame_indices) < cut_frame <= max(window.frame_indices)


def test_query_windows_restart_at_each_cut_and_a_short_piece_is_padded(gallery):
    from motionmatch.video.windows import phase_plans

    query = gallery["videos"] / gallery["queries"].path.iloc[0]  # 6 s at 12 fps; a window spans 23 frames (1.9 s)
    plain = plan_query(query, SPEC, 0.0, 6.0)
    plan = plan_query(query, SPEC, 0.0, 6.0, cuts_s=[2.5, 5.0])  # pieces of 2.5 s, 2.5 s and 1 s
    assert plain.cut_frames == () and plan.cut_frames == (30, 60)
    assert any("crosses 2 shot cut(s), at 2.50, 5.00 s" in note for note in plan.notes)
    assert any(_straddles(w, 30) or _straddles(w, 60) for w in plain.windows)  # without cuts, windows mix shots
    assert not any(_straddles(w, c) for w in plan.windows for c in plan.cut_frames)
    assert [w.clip_index for w in plan.windows] == list(range(len(plan.windows)))
    covered = set().union(*(range(min(w.frame_indices), max(w.frame_indices) + 1) for w in plan.windows))
    assert covered >= set(range(0, 71, SPEC.frame_stride))  # every sampled frame of the range is in a window
    last = plan.windows[-1]  # the 1 s piece after the cut at 5 s: shorter than a window, padded with its last frame
    assert min(last.frame_indices) == 60 and last.padded_frames > 0
    assert last.frame_indices[-last.padded_frames:] == (last.frame_indices[-last.padded_frames - 1],) * last.padded_frames
    for shifted in phase_plans(plan, SPEC.frame_stride):  # a phase shift never moves a window over a cut
        assert not any(_straddles(w, c) for w in shifted.windows for c in plan.cut_frames)


def test_cuts_in_range_finds_a_planted_cut_inside_the_range_only(gallery):
    from motionmatch.video.shots import cuts_in_range, detect_shots

    video, cut = _planted_cut(gallery)
    found = cuts_in_range(video, cut - 2.5, cut + 2.5, "content")
    assert any(abs(t - cut) <= 1 / 12 + 1e-6 for t in found), (found, cut)
    assert all(cut - 2.5 < t < cut + 2.5 for t in found)
    assert not [t for t in cuts_in_range(video, cut + 1.0, cut + 3.0, "content") if abs(t - cut) < 0.5]
    whole = [shot.start_s for shot in detect_shots(video, "content")[1:]]  # the library's whole-file pass: the oracle
    assert cuts_in_range(video, 0.0, 30.0, "content") == pytest.approx(whole, abs=1e-6)
    assert cuts_in_range(video, cut - 0.2, cut + 2.0, "content") == []  # within min_shot_s of the range's start


def test_a_dense_collection_bounded_by_shots_splits_the_query_range_at_its_cuts(gallery, tmp_path, tmp_db_uri):
    from motionmatch.video.windows import WindowSpec
    from motionmatch.data.sources import load_source
    from motionmatch.video.windows import recorded_clip_spec
    from motionmatch.extract.local import extract_embeddings
    from motionmatch.index.sync import index_embeddings
    from motionmatch.table import load_embeddings, read_extract_meta

    video, cut = _planted_cut(gallery)
    manifest, _ = load_source(gallery["videos"])
    flow, out = build_encoder("flow"), tmp_path / "dense"
    extract_embeddings(manifest[manifest.path == str(video)], flow, out, clip_spec=SPEC, progress=False,
                       window_spec=WindowSpec(stride_s=1.0, shots="content"), print_fn=lambda *_: None)
    with MotionStore(tmp_db_uri, "dense_shots") as store:
        index_embeddings(load_embeddings(out), store, flow.encoder_id, flow.preprocessing(),
                         clip_spec=recorded_clip_spec(read_extract_meta(out)))
        split = search_range(store, video, cut - 3.0, cut + 3.0, Config(k=5), exclude_video=False)
        kept = search_range(store, video, cut - 3.0, cut + 3.0, Config(k=5, split_at_cuts=False), exclude_video=False)
    assert len(split.query.cut_frames) >= 1 and any("shot cut" in note for note in split.notes)
    assert not any(_straddles(w, c) for w in split.query.windows for c in split.query.cut_frames)
    assert kept.query.cut_frames == () and not any("shot cut" in note for note in kept.notes)
    assert split.segments and split.segments[0].video_path == str(video)  # it finds its own range
    # issue 18 bug 1: `evaluate --segments --ignore-cuts` parsed the flag and never passed it on
    import pandas as pd

    from motionmatch import cli

    pd.DataFrame([{"query_id": "q", "path": str(video), "kind": "same_motion", "query_start_s": cut - 3.0,
                   "query_end_s": cut + 3.0}]).to_csv(tmp_path / "queries.csv", index=False)
    pd.DataFrame([{"query_id": "q", "video": str(video), "start_s": cut - 3.0, "end_s": cut + 3.0,
                   "query_start_s": cut - 3.0, "query_end_s": cut + 3.0}]).to_csv(tmp_path / "relevant.csv", index=False)
    said = {}
    for flags in ((), ("--ignore-cuts",)):
        argv = ["evaluate", "--segments", str(tmp_path / "relevant.csv"), "--milvus-uri", tmp_db_uri, "--collection",
                "dense_shots", "--n-boot", "10", "--out", str(tmp_path / "evaluation"), *flags]
        with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(argv) == 0
        said[flags] = err.getvalue()
    assert "shot cut(s)" in said[()] and "shot cut(s)" not in said[("--ignore-cuts",)], said


def test_split_at_cuts_takes_true_false_or_none_only(gallery, store):
    query = gallery["videos"] / gallery["queries"].path.iloc[0]
    with pytest.raises(ParameterError, match="split_at_cuts must be True, False or None"):
        search_range(store, query, 0.0, 4.0, Config(split_at_cuts="yes"))
