"""Localisation benchmark (issue 19): segment search on long synthetic videos against the issue's targets.

The chain is the one a user runs, through the same API the CLI calls. The gallery (steps 1-3) is
``bench.harness.gallery``'s, shared with bench_query_cuts:

1. ``generate_long_videos`` (``generate-sample --long``): long videos with labelled motion segments (2-20 s), hard
   cuts, continuous transitions and distractor footage, ``ground_truth.csv`` and ``cuts.csv``. Queries:
   **copies**, the VSC22-style edited copies of ``write_edited_copies`` (every edit of ``motionmatch.data.EDITS``:
   rescale, flip, crop, speed 0.8x and 1.25x, brightness/contrast, caption bar, partial, padded; 4 s source ranges,
   each copy searched as a whole file); **same motion**, ``write_same_motion_queries`` (a 4 s range of an indexed
   video; relevant: the same label in other groups of other videos).
2. ``extract_embeddings`` with dense windows and the CLI's defaults (``extract --stride-s``: 16 frames x step 4
   every ``video.DEFAULT_STRIDE_S``, and the frame store of the fine stage), FlowEncoder; shots by ``--shots``
   (default ``content``: the CLI's default TransNetV2 costs about 2,500 s per video-hour on 2 CPU cores, 20x the
   content detector, and both find the generated cuts; ``--shots transnetv2`` runs it).
3. ``index_run`` into a Milvus Lite file (``motionmatch index``), which also fits and saves the gallery calibration.
4. ``evaluate_search`` (``motionmatch evaluate --segments``) with the package defaults (coarse windows, then the fine
   stage: copy candidates, frame-level alignment, copy verification, snapping), and the **naive baseline** side by
   side: per gallery window the maximum raw cosine over the query's windows, a threshold, adjacent windows merged
   (never across a gap wider than one stride); no candidate voting, no alignment, no calibration, no fine stage. Its
   threshold is the best of a grid **on the tuning seed**, like the method's.

Reported: the targets, the split of what went wrong ((a) the right video found: video R@1 and R@5; (b) given the
right video, the top range's tIoU, itself (b1) the share of those whose top range is at the right moment times (b2)
its tIoU there; (c) the boundary error at start and at end), the per-edit table
(``motionmatch.report.per_edit_table``), and the query lengths: 2, 4, 8 and 16 s (re-encoded copies cut out and
searched as whole files; same-motion ranges) and, for same motion, the whole labelled segment as the query range (a
same-motion query's whole *file* is the indexed video itself, left out of its own search, so there is no whole-file
same-motion query; every copy query is a whole file).

Tuning and reporting are separate: ``--seed`` (default 4) builds the reported gallery; every choice in
``motionmatch.search`` was made on seed 0. Seed 1 was the reported gallery until 2026-12-03, when its caption-copy
failures were examined to find why the change signal failed under an overlay; seed 2 replaced it until 2026-12-04,
when its one caption miss was examined (the copy's source never reached the fine stage: the bar hid it from the
frame store's search); seed 3 replaced it until later that day, when its one padded miss was examined (the copy
grew over padding from a look-alike shot). None of them is held out any more, so seed 4 replaced them
(``--seed 0 --sweep`` prints the grid; ``--seed 0 --fit-copy-model`` refits the copy verification's logistic
model, ``motionmatch.search.fine.COPY_MODEL``, on the alignments of every query with its candidate videos, and
writes it to ``bench/out/copy_model_seed0.json``).

Targets (issue 19), 95% CIs as percentile bootstraps over queries:

* copies, all edits pooled: R1@tIoU0.7 >= 0.97, µAP (segment, VSC22) >= 0.95, median boundary error <= 2 frames;
  per edit: R1@tIoU0.7 >= 0.9;
* same motion (FlowEncoder): R1@tIoU0.5 >= 0.80, median boundary error <= 0.5 s, given the right video mean tIoU
  >= 0.8; and, since the issue asks that the aligner's own share be met whatever the encoder does, (b2) given the
  right moment (the top range overlaps a relevant one) mean tIoU >= 0.8.

Usage::

    python -m bench.bench_localize --quick   # 4 x 30 s, 18 copies + 8 ranges, 2 per length (3.5 min; not judged)
    python -m bench.bench_localize           # 8 x 60 s, 36 copies + 30 ranges, 8 per length (12 min)
    python -m bench.bench_localize --seed 0 --fit-copy-model   # about 5 min

Times are wall times on 2 shared CPU cores (load average about 9), galleries already extracted; building one
adds about 1 min (8 x 60 s).

Prints a markdown report and writes ``bench/out/localize.json``. ``main(argv) -> dict`` for ``python -m bench``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import (LONG_FULL, LONG_QUICK, OUT_DIR, QUERY_S, BenchRun, build_gallery, edited_lists,
                           gallery_root, length_lists, open_store, same_motion_lists)

TUNING_SEED = 0  # the gallery every default was chosen on; never the reported one
REPORTED_SEED = 4  # held out: never looked at before its run (seeds 1-3, looked at on 2026-12-03/04, are not)
BASELINE_THRESHOLDS = (0.8, 0.85, 0.9)  # raw cosine grid for the naive baseline
BASELINE_THRESHOLD = 0.85  # tuning seed: best same-motion R1@0.5 + copy R1@0.7 (0.33, tied with 0.8; better F1), --sweep
N_BOOT = 1000
SWEEP_GRID = (  # option sets tried on the tuning seed (search_vectors keywords over cached query vectors)
    {"extend_margin": None, "coverage": False}, {"extend_margin": None}, {"extend_margin": None, "calibration": None},
    {"coverage": False}, {}, {"calibration": None},
    {"extend_margin": 0.05}, {"copy_level": 0.95}, {"extend_margin": 0.05, "copy_level": 0.95},
    {"min_hits": 3}, {"aligner": "hough"}, {"fetch_windows": False},
    {"snap_s": 0.0}, {"snap_s": 2.0}, {"snap_s": 4.0}, {"extend_margin": None, "snap_s": 4.0},
    {"snap_s": 16.0}, {"snap_s": 30.0},
)
BOUNDARY_FRAMES = 2  # the copies' boundary target, in frames of the gallery
TARGETS = (  # (key, kind, metric, comparison, value (None: BOUNDARY_FRAMES / fps), text)
    ("copy_r1_07", "copy", "R1@tIoU=0.7", ">=", 0.97, "copies, all edits pooled: R1@tIoU0.7 >= 0.97"),
    ("copy_uap", "copy", "segment_uAP", ">=", 0.95, "copies, all edits pooled: µAP >= 0.95"),
    ("copy_boundary", "copy", "boundary_error_s", "<=", None,
     f"copies, all edits pooled: median boundary error <= {BOUNDARY_FRAMES} frames"),
    ("same_r1_05", "same_motion", "R1@tIoU=0.5", ">=", 0.80, "same motion (FlowEncoder): R1@tIoU0.5 >= 0.80"),
    ("same_boundary", "same_motion", "boundary_error_s", "<=", 0.5,
     "same motion (FlowEncoder): median boundary error <= 0.5 s"),
    ("same_tiou_given_video", "same_motion", "tIoU_given_video", ">=", 0.8,
     "same motion (FlowEncoder): given the right video, mean tIoU >= 0.8"),
    # issue 19: "the aligner's own share must be met either way". tIoU_given_video is the share of right-video
    # answers at the right moment times their tIoU; the aligner's share is the second factor.
    ("same_tiou_given_moment", "same_motion", "tIoU_given_moment", ">=", 0.8,
     "same motion (FlowEncoder), the aligner's own share: given the right moment, mean tIoU >= 0.8"),
)
PER_EDIT_TARGET = 0.9  # R1@tIoU0.7 of each edit's copies
SHOWN = ("R1@tIoU=0.5", "R1@tIoU=0.7", "VCSL_P", "VCSL_R", "VCSL_F1", "query_macro_F1", "segment_uAP", "pair_uAP",
         "boundary_error_s")
SPLIT = ("video_R@1", "video_R@5", "tIoU_given_video", "moment_given_video", "tIoU_given_moment", "start_error_s",
         "end_error_s")  # (a), (a), (b) = (b1) x (b2), (b1), (b2), (c), (c)
LENGTHS_S = (2.0, 4.0, 8.0, 16.0)  # query ranges of the length table
LENGTH_METRICS = ("R1@tIoU=0.5", "R1@tIoU=0.7", "tIoU_given_video")
WHOLE_SEGMENT = "whole segment"
PER_LENGTH = {"quick": 2, "full": 8}  # queries of each kind per length (the main lists hold 4 s: the same kind again)


# ----------------------------------------------------------------------------- the naive baseline
def baseline_predictions(gallery: dict, queries: pd.DataFrame, threshold: float, vectors_by_query: dict) -> pd.DataFrame:
    """Per gallery window the max raw cosine over the query windows; threshold; merge adjacent windows."""
    from motionmatch.search import merge_window_hits
    from motionmatch.table import embedding_matrix, load_embeddings

    table = gallery.setdefault("_table", load_embeddings(gallery["embeddings"]))
    matrix = gallery.setdefault("_matrix", embedding_matrix(table).astype(np.float64))
    paths = table["video_path"].map(lambda p: str(Path(p).resolve())).to_numpy()
    rows = []
    for query in queries.itertuples(index=False):
        plan, vectors = vectors_by_query[query.query_id][:2]
        best = (vectors.astype(np.float64) @ matrix.T).max(axis=0)
        own = paths == str(Path(query.path).resolve())
        hits = [_Hit(p, s, e, c) for p, s, e, c, o in zip(paths, table["start_s"], table["end_s"], best, own) if not o]
        for seg in merge_window_hits(hits, threshold, gallery["stride_s"], query_range=(plan.start_s, plan.end_s)):
            rows.append({"query_id": query.query_id, "video": seg.video_path, "start_s": seg.start_s,
                         "end_s": seg.end_s, "score": seg.score, "query_start_s": plan.start_s,
                         "query_end_s": plan.end_s, "kind": query.kind})
    return pd.DataFrame(rows, columns=["query_id", "video", "start_s", "end_s", "score", "query_start_s",
                                       "query_end_s", "kind"])


class _Hit:
    __slots__ = ("video_path", "start_s", "end_s", "score")

    def __init__(self, video_path, start_s, end_s, score):
        self.video_path, self.start_s, self.end_s, self.score = video_path, float(start_s), float(end_s), float(score)


def embed_queries(store, queries: pd.DataFrame, n_phases: int | None = None) -> dict:
    """{query_id: (QueryPlan, vectors, phase vectors (n_phases - 1, n, dim), the range's frames)} cut and embedded
    as search_range does (one decode per query for every phase: ``embed_plans``)."""
    from motionmatch.encoders import encoder_from_id
    from motionmatch.search import embed_plans
    from motionmatch.video import ClipSpec, collection_clip_spec, phase_plans, plan_query

    info = store.encoder_info()
    encoder = encoder_from_id(info["encoder_id"])
    spec, stride = collection_clip_spec(info.get("clip_spec"), ClipSpec().frames_per_clip)
    n_phases = spec.frame_stride if n_phases is None else n_phases  # search_range's default on a dense collection
    out = {}
    for query in queries.itertuples(index=False):
        start = None if pd.isna(query.query_start_s) else float(query.query_start_s)
        end = None if pd.isna(query.query_end_s) else float(query.query_end_s)
        plan = plan_query(query.path, spec, start, end, stride)
        vectors, frames = embed_plans([plan, *phase_plans(plan, n_phases)], encoder)
        out[query.query_id] = (plan, vectors[0], np.stack(vectors[1:]) if len(vectors) > 1 else None, frames)
    return out


def score(predictions: pd.DataFrame, queries: pd.DataFrame, relevant: pd.DataFrame, n_boot: int,
          seed: int = 0) -> pd.DataFrame:
    """evaluate_localization per query kind (the same tables evaluate_search returns)."""
    from motionmatch.metrics import evaluate_localization

    tables = []
    for kind in dict.fromkeys(queries["kind"]):
        ids = set(queries.loc[queries["kind"] == kind, "query_id"])
        tables.append(evaluate_localization(predictions[predictions["query_id"].isin(ids)],
                                            relevant[relevant["query_id"].isin(ids)], n_boot=n_boot,
                                            seed=seed).assign(kind=kind))
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- report
def value_of(metrics: pd.DataFrame, kind: str, metric: str) -> dict:
    row = metrics[(metrics["kind"] == kind) & (metrics["metric"] == metric)].iloc[0]
    return {"value": float(row["value"]), "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"])}


def _cell(v: dict, digits: int = 3) -> str:
    """A value and its 95% CI; "-" where there is no value (no top-1 segment overlapped a relevant moment)."""
    if np.isnan(v["value"]):
        return "-"
    return f"{v['value']:.{digits}f} [{v['ci_low']:.{digits}f}, {v['ci_high']:.{digits}f}]"


def judge(run: BenchRun, metrics: pd.DataFrame, fps: float) -> list:
    """One record per pooled target of the issue, on the segment search's metrics (the 95% CI as the detail)."""
    records = []
    for key, kind, metric, op, goal, text in TARGETS:
        goal = BOUNDARY_FRAMES / fps if goal is None else goal
        v = value_of(metrics, kind, metric)
        unit = "s" if metric.endswith("_s") else ""
        if np.isnan(v["value"]):
            records.append(run.target(key, None, unit, text, passed=None,
                                      detail="no value (no top-1 segment overlapped a relevant moment)"))
            continue
        passed = bool(v["value"] >= goal) if op == ">=" else bool(v["value"] <= goal)
        detail = f"95% CI [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" + (
            f" (goal {goal:.4f} s = {BOUNDARY_FRAMES} frames at {fps:g} fps)" if key == "copy_boundary" else "")
        records.append(run.target(key, v["value"], unit, text, passed=passed, detail=detail))
    return records


def judge_edits(run: BenchRun, per_edit: pd.DataFrame) -> list:
    """One record per edit: its copies' R1@tIoU0.7 against PER_EDIT_TARGET (the pooled row is judged above)."""
    records = []
    for row in per_edit[per_edit["edit"] != "pooled"].to_dict("records"):
        records.append(run.target(f"copy_r1_07_{row['edit']}", row["R1@tIoU"], "",
                                  f"copies, edit {row['edit']}: R1@tIoU0.7 >= {PER_EDIT_TARGET:g}",
                                  passed=bool(row["R1@tIoU"] >= PER_EDIT_TARGET),
                                  detail=f"95% CI [{row['ci_low']:.3f}, {row['ci_high']:.3f}], "
                                         f"{row['n_queries']} copies"))
    return records


def table_markdown(named: dict[str, pd.DataFrame], shown=SHOWN) -> str:
    lines = ["| method | query kind | n | " + " | ".join(shown) + " |", "|---|---|---|" + "---|" * len(shown)]
    for name, metrics in named.items():
        for kind, rows in metrics.groupby("kind", sort=False):
            if kind == "all":
                continue
            values = rows.set_index("metric")
            cells = [_cell({k: float(values.loc[m, k]) for k in ("value", "ci_low", "ci_high")}) for m in shown]
            lines.append(f"| {name} | {kind} | {int(rows['n_queries'].iloc[0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_edit_markdown(per_edit: pd.DataFrame) -> str:
    lines = ["| edit | n | R1@tIoU0.7 [95% CI] | video R@1 | median boundary error s | verdict (>= 0.9) |",
             "|---|---|---|---|---|---|"]
    for row in per_edit.to_dict("records"):
        verdict = "" if row["edit"] == "pooled" else ("PASS" if row["R1@tIoU"] >= PER_EDIT_TARGET else "FAIL")
        lines.append(f"| {row['edit']} | {row['n_queries']} | {row['R1@tIoU']:.3f} [{row['ci_low']:.3f}, "
                     f"{row['ci_high']:.3f}] | {row['video_R@1']:.3f} | {row['boundary_error_s']:.3f} | {verdict} |")
    return "\n".join(lines)


def lengths_markdown(rows: list[dict]) -> str:
    lines = ["| query kind | query range | n | " + " | ".join(LENGTH_METRICS) + " | s per query |",
             "|---|---|---|" + "---|" * (len(LENGTH_METRICS) + 1)]
    for row in rows:
        if "missing" in row:
            lines.append(f"| {row['kind']} | {row['length']} | 0 | {row['missing']} |" + " |" * len(LENGTH_METRICS))
            continue
        cells = [_cell(row[m]) for m in LENGTH_METRICS]
        lines.append(f"| {row['kind']} | {row['length']} | {row['n']} | " + " | ".join(cells)
                     + f" | {row['s_per_query']:.1f} |")
    return "\n".join(lines)


def run_method(store, queries, relevant, n_boot: int, config=None) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``evaluate_search`` (``motionmatch evaluate --segments``) with ``config`` (default: the package's defaults)."""
    from motionmatch.evaluation import evaluate_search

    began = time.perf_counter()
    metrics, predictions, _ = evaluate_search(store, queries, relevant, config, n_boot=n_boot)
    metrics = metrics[metrics["kind"] != "all"].reset_index(drop=True)
    return metrics, predictions, (time.perf_counter() - began) / max(1, len(queries))


def cached_predictions(store, queries: pd.DataFrame, vectors_by_query: dict, calibration, **options) -> pd.DataFrame:
    """Segments of every query by ``search_vectors`` (what search_range runs once the query is embedded), with
    ``SegmentSearchConfig``'s defaults changed by ``options`` (its fields, and ``query_phases``)."""
    from motionmatch.search import SegmentSearchConfig, own_videos, search_vectors

    n_phases = options.pop("query_phases", None)
    config = SegmentSearchConfig(k=10, n_candidates=10, max_segments=10, calibration=calibration, **options)
    rows = []
    for query in queries.itertuples(index=False):
        plan, vectors, phase_vectors, frames = vectors_by_query[query.query_id]
        if n_phases is not None:
            phase_vectors = None if n_phases == 1 else phase_vectors[:n_phases - 1]
        found = search_vectors(store, plan, vectors, config, excluded=own_videos(store, query.path),
                               phase_vectors=phase_vectors, query_frames=frames)
        rows.extend({"query_id": query.query_id, "video": str(Path(s.video_path).resolve()), "start_s": s.start_s,
                     "end_s": s.end_s, "score": s.score, "query_start_s": s.query_start_s,
                     "query_end_s": s.query_end_s, "kind": query.kind} for s in found.segments)
    return pd.DataFrame(rows, columns=["query_id", "video", "start_s", "end_s", "score", "query_start_s",
                                       "query_end_s", "kind"])


def sweep(store, gallery, queries, relevant, vectors) -> list[dict]:
    """The tuning grid (run on the tuning seed only): each option set's headline numbers, no bootstrap."""
    from motionmatch.refine import load_gallery_calibration

    calibration, _ = load_gallery_calibration(store)
    rows = []
    for options in SWEEP_GRID:
        chosen = {**options, "calibration": options.get("calibration", calibration)}
        began = time.perf_counter()
        metrics = score(cached_predictions(store, queries, vectors, **chosen), queries, relevant, 0)
        rows.append({"options": options, **_headline(metrics),
                     "s_per_query": (time.perf_counter() - began) / len(queries)})
        print(json.dumps(rows[-1], default=str), flush=True)
    for threshold in BASELINE_THRESHOLDS:
        metrics = score(baseline_predictions(gallery, queries, threshold, vectors), queries, relevant, 0)
        rows.append({"options": {"baseline_threshold": threshold}, **_headline(metrics)})
        print(json.dumps(rows[-1], default=str), flush=True)
    return rows


def _headline(metrics: pd.DataFrame) -> dict:
    return {f"{kind}:{metric}": round(value_of(metrics, kind, metric)["value"], 3)
            for kind in ("copy", "same_motion") for metric in ("R1@tIoU=0.5", "R1@tIoU=0.7", "VCSL_F1",
                                                               "segment_uAP", "boundary_error_s",
                                                               "tIoU_given_video")}


def copy_decisions(predictions: pd.DataFrame, queries: pd.DataFrame) -> dict:
    """How often the top-1 segment is a verified copy: for the edited copies (should be all) and for the
    same-motion queries (should be none), as "k of n (share)"."""
    top = predictions.sort_values("score", ascending=False, kind="stable").groupby("query_id").head(1)
    called = dict(zip(top["query_id"], top["segment_kind"] == "copy"))
    out = {}
    for key, kind in (("copy_called_copy", "copy"), ("same_called_copy", "same_motion")):
        ids = queries.loc[queries["kind"] == kind, "query_id"]
        k = sum(bool(called.get(q, False)) for q in ids)
        out[key] = f"{k} of {len(ids)} ({k / max(1, len(ids)):.3f})"
    return out


def split_markdown(named: dict[str, pd.DataFrame]) -> str:
    """(a) the right video, (b) the range given the right video, (c) each end's error: per kind and method."""
    header = ["(a) video_R@1", "(a) video_R@5", "(b) tIoU_given_video", "(b1) moment_given_video",
              "(b2) tIoU_given_moment", "(c) start_error_s", "(c) end_error_s"]
    lines = ["| query kind | method | n | " + " | ".join(header) + " |", "|---|---|---|" + "---|" * len(header)]
    kinds = dict.fromkeys(k for m in named.values() for k in m["kind"] if k != "all")
    for kind in kinds:
        for name, metrics in named.items():
            n = int(metrics.loc[metrics["kind"] == kind, "n_queries"].iloc[0])
            cells = [_cell(value_of(metrics, kind, m)) for m in SPLIT]
            lines.append(f"| {kind} | {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- query lengths
def whole_segment_list(gallery: dict, queries: pd.DataFrame, relevant: pd.DataFrame, n_queries: int
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``n_queries`` same-motion queries (one per labelled segment) with the whole labelled segment they
    were drawn from as the query range."""
    truth = pd.read_csv(gallery["videos"] / "ground_truth.csv")
    truth["path"] = [str((gallery["videos"] / v).resolve()) for v in truth["video"]]
    chosen, seen = [], set()
    for query in queries.to_dict("records"):
        inside = truth[(truth["path"] == query["path"]) & (truth["start_s"] <= query["query_start_s"] + 1e-6)
                       & (truth["end_s"] >= query["query_end_s"] - 1e-6)].iloc[0]
        if (inside["path"], inside["start_s"]) in seen:
            continue
        seen.add((inside["path"], inside["start_s"]))
        chosen.append({**query, "query_start_s": float(inside["start_s"]), "query_end_s": float(inside["end_s"])})
        if len(chosen) == n_queries:
            break
    whole = pd.DataFrame(chosen)
    ranges = whole.set_index("query_id")[["query_start_s", "query_end_s"]]
    kept = relevant[relevant["query_id"].isin(ranges.index)].drop(columns=["query_start_s", "query_end_s"])
    return whole, kept.join(ranges, on="query_id").reset_index(drop=True)


def length_rows(store, gallery: dict, lists: dict, whole: tuple[pd.DataFrame, pd.DataFrame], n_boot: int
                ) -> list[dict]:
    """R1@tIoU0.5 / 0.7 and tIoU given the right video per query kind and length (``evaluate_search``)."""
    from motionmatch.evaluation import evaluate_search

    rows = []
    entries = [((kind, f"{length:g} s"), lists[(kind, length)]) for kind in ("copy", "same_motion")
               for length in LENGTHS_S] + [(("same_motion", WHOLE_SEGMENT), whole)]
    for (kind, length), found in entries:
        if isinstance(found, str):
            rows.append({"kind": kind, "length": length, "missing": found})
            continue
        queries, relevant = found
        began = time.perf_counter()
        metrics, _, _ = evaluate_search(store, queries, relevant, n_boot=n_boot)
        metrics = metrics[metrics["kind"] == kind]
        ranges = (queries["query_end_s"] - queries["query_start_s"]).dropna()
        rows.append({"kind": kind, "length": length + (f" ({ranges.mean():.1f} s on average)" if length ==
                                                       WHOLE_SEGMENT else ""), "n": int(len(queries)),
                     **{m: value_of(metrics, kind, m) for m in LENGTH_METRICS},
                     "s_per_query": (time.perf_counter() - began) / len(queries)})
        print(f"  lengths: {kind} {length}: {rows[-1]['R1@tIoU=0.7']['value']:.3f} R1@0.7 "
              f"({rows[-1]['s_per_query']:.1f} s per query)", flush=True)
    return rows


# ----------------------------------------------------------------------------- the copy model
def copy_alignments(store, queries: pd.DataFrame, relevant: pd.DataFrame, vectors_by_query: dict,
                    stored_paths: dict) -> pd.DataFrame:
    """Per query, its frame-level alignment with every candidate video the fine stage would align
    (:func:`motionmatch.search.fine.copy_matches` on the coarse stage's segments), labelled 1 where a copy's
    alignment lies in its source video over the source range (an edited copy's source is always aligned, as if it
    were a candidate), else 0 (every other video; every same-motion query's; :func:`fit_copy` leaves out a padded
    copy's other videos). ``stored_paths``: the indexed path of
    each resolved video path."""
    from motionmatch.index.frames import fetch_frames
    from motionmatch.refine import load_gallery_calibration
    from motionmatch.search import SegmentSearchConfig, own_videos, search_vectors
    from motionmatch.search.fine import align_copy, copy_matches

    config = SegmentSearchConfig(fine=False, calibration=load_gallery_calibration(store)[0])
    frames_store = store.frame_store()
    rows = []
    for query in queries.itertuples(index=False):
        plan, vectors, phase_vectors, signal = vectors_by_query[query.query_id]
        excluded = own_videos(store, query.path)
        coarse = search_vectors(store, plan, vectors, config, excluded=excluded, phase_vectors=phase_vectors,
                                query_frames=signal)
        matches = {str(Path(v).resolve()): m for v, m in
                   copy_matches(frames_store, signal, coarse.segments, config.n_candidates, excluded).items()}
        source = relevant[relevant["query_id"] == query.query_id].iloc[0] if query.kind == "copy" else None
        if source is not None and source["video"] not in matches:
            stored = stored_paths[source["video"]]
            span = {stored: (max(0.0, source["start_s"] - 3.0), source["end_s"] + 3.0)}
            match = align_copy(signal, fetch_frames(frames_store, span)[stored])
            if match is not None:
                matches[source["video"]] = match
        for video, match in matches.items():
            label = source is not None and video == source["video"] and \
                min(match.end_s, source["end_s"]) > max(match.start_s, source["start_s"])
            rows.append({"query_id": query.query_id, "kind": query.kind, "edit": getattr(query, "edit", ""),
                         "video": video, "label": int(label), "probability": match.probability,
                         **dict(zip(("appearance", "change", "foreground", "exact", "log_run_s"), match.features))})
    return pd.DataFrame(rows)


def fit_copy(store, gallery: dict, queries, relevant, vectors, seed: int) -> dict:
    """``--fit-copy-model``: the copy model refitted on this gallery's alignments (printed, and written to
    ``bench/out/copy_model_seed<seed>.json`` with the alignments' summary)."""
    from motionmatch.search.fine import COPY_MODEL, copy_probability, fit_copy_model
    from motionmatch.table import load_embeddings

    stored = {str(Path(p).resolve()): p for p in load_embeddings(gallery["embeddings"])["video_path"].unique()}
    table = copy_alignments(store, queries, relevant, vectors, stored)
    # a padded copy's filler is footage of another video, copied: its alignment there is a true copy the ground truth
    # does not list, so it is left out rather than taught as a non-copy
    table = table[~((table["edit"] == "padded") & (table["label"] == 0))].reset_index(drop=True)
    features = table[["appearance", "change", "foreground", "exact", "log_run_s"]].to_numpy(float)
    model = fit_copy_model(features, table["label"].to_numpy(int),
                           note=f"python -m bench.bench_localize --seed {seed} --fit-copy-model")
    summary = {}
    for name, used in (("current", COPY_MODEL), ("fitted", model)):
        p = np.array([copy_probability(f, used) for f in features])
        positive = table["label"].to_numpy(bool)
        summary[name] = {"true_copies_at_0.5": float((p[positive] >= 0.5).mean()),
                         "false_copies_at_0.5": int((p[~positive] >= 0.5).sum()),
                         "min_positive": float(p[positive].min()), "max_negative": float(p[~positive].max())}
    out = {"model": model, "current": COPY_MODEL, "n_alignments": int(len(table)),
           "n_positive": int(table["label"].sum()), "separation": summary}
    path = OUT_DIR / f"copy_model_seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    table.to_csv(OUT_DIR / f"copy_alignments_seed{seed}.csv", index=False)
    print(f"COPY_MODEL = {model!r}\n{json.dumps(summary, indent=2)}\n({len(table)} alignments, "
          f"{out['n_positive']} copies; written to {path})")
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_localize", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{LONG_QUICK} (not judged)")
    parser.add_argument("--seed", type=int, default=REPORTED_SEED, help=f"gallery seed (reported: {REPORTED_SEED}; tuning: {TUNING_SEED})")
    parser.add_argument("--shots", default="content", help="shot detector for extraction (content, transnetv2, none)")
    parser.add_argument("--sweep", action="store_true", help="print the tuning grid (use with --seed 0)")
    parser.add_argument("--fit-copy-model", action="store_true",
                        help="refit the copy verification model on this gallery (use with --seed 0)")
    parser.add_argument("--changes", action="store_true",
                        help="only score the reference's motion changes against the ground truth (bench/change_points.py)")
    parser.add_argument("--workdir", default="", help="where the gallery is built (default bench/out/localize_*)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/localize.json)")
    args = parser.parse_args(argv)
    run = BenchRun("localize", argv, quick=args.quick, out=args.out)
    size = LONG_QUICK if args.quick else LONG_FULL
    root = Path(args.workdir) if args.workdir else gallery_root(size, args.seed, args.shots)
    gallery = build_gallery(root, args.seed, size["n_videos"], size["duration_s"], size["n_queries"], args.shots)
    n_boot = 200 if args.quick else N_BOOT
    if args.changes:
        from bench.change_points import change_point_rows, markdown

        rows = change_point_rows(gallery["embeddings"], gallery["videos"] / "ground_truth.csv")
        print(f"seed {args.seed}\n" + markdown(rows), flush=True)
        return {"changes": rows}
    copies, copy_truth = edited_lists(gallery)
    same, same_truth = same_motion_lists(gallery)
    queries = pd.concat([copies, same], ignore_index=True)
    relevant = pd.concat([copy_truth, same_truth], ignore_index=True)
    from motionmatch.video import open_video

    fps = float(open_video(copy_truth["video"].iloc[0]).info().fps)
    with open_store(gallery) as store:
        vectors = embed_queries(store, queries)
        if args.fit_copy_model:
            return {"copy_model": fit_copy(store, gallery, queries, relevant, vectors, args.seed)}
        if args.sweep:
            grid = sweep(store, gallery, queries, relevant, vectors)
            (OUT_DIR / f"localize_sweep_seed{args.seed}.json").write_text(json.dumps(grid, indent=2, default=str))
            return {"sweep": grid}
        began = time.perf_counter()
        method, predictions, per_query = run_method(store, queries, relevant, n_boot)
        search_s = time.perf_counter() - began
        print(f"  main queries searched: {len(queries)} in {search_s:.0f} s", flush=True)
        from motionmatch.report import per_edit_table

        per_edit = per_edit_table(copies, copy_truth, predictions, threshold=0.7, n_boot=n_boot)
        decisions = copy_decisions(predictions, queries)
        n_length = PER_LENGTH[run.mode]
        lists = length_lists(gallery, LENGTHS_S, n_length, args.seed)
        lengths = length_rows(store, gallery, lists, whole_segment_list(gallery, same, same_truth, n_length), n_boot)
    baseline = score(baseline_predictions(gallery, queries, BASELINE_THRESHOLD, vectors), queries, relevant, n_boot)
    named = {"segment search (defaults)": method, f"naive baseline (max cosine >= {BASELINE_THRESHOLD:g}, merge)": baseline}
    records = judge(run, method, fps)
    records += judge_edits(run, per_edit)
    edits = ", ".join(dict.fromkeys(copies["edit"]))
    summary_lines = [
        f"{size['n_videos']} long synthetic videos x {size['duration_s']:g} s at {fps:g} fps (seed {args.seed}; every "
        f"default tuned on seed {TUNING_SEED}), dense windows every {gallery['stride_s']:g} s (FlowEncoder, shots: "
        f"{args.shots}). Queries: {len(copies)} edited copies of {QUERY_S:g} s source ranges ({gallery['per_edit']} "
        f"per edit: {edits}), each searched as a whole file, and {len(same)} same-motion ranges of {QUERY_S:g} s. "
        "95% bootstrap CIs over queries.", "",
        "### Targets", "",
        "| target | measured (segment search) [95% CI] | verdict | naive baseline |", "|---|---|---|---|"]
    for record, (_, kind, metric, *_rest) in zip(records, TARGETS):
        summary_lines.append(f"| {record.target} | {_cell(value_of(method, kind, metric))} | {record.shown_verdict} | "
                             f"{_cell(value_of(baseline, kind, metric))} |")
    for record in records[len(TARGETS):]:
        summary_lines.append(f"| {record.target} | {record.measured} | {record.shown_verdict} | |")
    split = split_markdown(named)
    table = table_markdown(named)
    summary_lines += [
        "", "### What went wrong: (a) the video, (b) the range given the video, (c) each boundary", "", split,
        "", "(a) video R@k: a relevant video among the top-k segments' videos; (b) mean top-1 tIoU over the queries "
        "whose top-1 is in a relevant video, the product of (b1) the share of them whose top-1 overlaps a relevant "
        "moment (the encoder told the video's motions apart) and (b2) the mean top-1 tIoU over the queries whose "
        "top-1 overlaps one (the aligner's bounds); (c) median |error| of the top-1's start and end, seconds, over the "
        "queries whose top-1 overlaps a relevant moment.",
        "", "### The copy decision (top-1 segment of each query)", "",
        f"Edited copies answered with a verified copy: {decisions['copy_called_copy']}; same-motion queries answered "
        f"with a (false) copy: {decisions['same_called_copy']}.",
        "", "### Per edit (copies, R1@tIoU0.7)", "", per_edit_markdown(per_edit),
        "", "### Query lengths", "", lengths_markdown(lengths),
        "", f"{n_length} queries of each kind per length (fewer than the main lists, to keep the run short; the 4 s "
        "rows are new lists, not the main ones). Copies here are re-encoded cuts (crf 30, `write_copy_queries`) "
        "searched as whole files; same-motion rows are ranges of an indexed video; the whole-segment row searches "
        "the whole labelled segment a same-motion query was drawn from.",
        "", "### Every metric", "", table]
    return run.finish("\n".join(summary_lines), seed=args.seed, size=size, shots=args.shots,
                      stride_s=gallery["stride_s"], fps=fps, n_queries=int(len(queries)), per_edit=gallery["per_edit"],
                      n_windows=len(gallery.get("_table", [])) or None, timings=gallery["timings"],
                      s_per_query=per_query, search_s=search_s,
                      metrics={name: m.to_dict(orient="records") for name, m in named.items()},
                      per_edit_table=per_edit.to_dict(orient="records"), lengths=lengths,
                      table_markdown=table, split_markdown=split, copy_decisions=decisions)


if __name__ == "__main__":
    main()
