"""The pose channel against optical flow on real people filmed by 4 synchronised cameras (the Pose2Sim sample).

What is measured, on one run:

* **retrieval** of the same moment: the Pose2Sim sample (:func:`motionmatch.data.pose2sim.write_pose2sim_sample`,
  2 trials x 4 cameras x 3 windows of 0.55 s) cut into 16-frame clips (``ClipSpec(16, frame_stride=1,
  clips_per_video=9)``, 3 in ``--quick``); label = trial:window. *Cross-camera*: each query ranks the clips of the
  other cameras only (its own camera is masked, clips of its own video excluded); *same-camera*: each query ranks its
  own camera's clips that start at least half a clip (8 frames) away from it (the relevant ones are the other clips of
  its window at least that far away: same view, a different part of the same 0.55 s). P@1 and P@10 with 95% bootstrap CIs over queries, through :mod:`motionmatch.evaluation.retrieval`. Also
  *moment@1*: the top cross-camera hit is the same trial within +-4 frames (67 ms) of the query's moment (the
  finest test; clips of every window of a camera at the same frames are exactly synchronised);
* **flow, pose and a fused score** ``w * pose cosine + (1 - w) * flow cosine`` (flow alone where a clip has pose
  coverage 0); ``w`` is chosen on the queries of half of the labels and measured on the queries of the other half,
  both ways round (2-fold), so no query is scored with a weight chosen on its own label; and the same with notebook
  06's re-ranking stages (alpha-QE, DBA, k-reciprocal), the pose channel alone and fused, chosen the same way
  (:mod:`bench.pose_fusion`, every score from the package's evaluation engine);
* **descriptor variants** (world canonical positions, joint angles, angles + velocities, 2D image landmarks, ...),
  all from the same tracking run and pooled over each clip's people as ``pose:v2`` does, for the table in
  :mod:`motionmatch.encoders.pose`; and **how the people become one score** (the first person only, as
  ``pose:v1``; the coverage-weighted sum of ``pose:v2``; the best pair; a symmetric Chamfer score);
* **cost** on one core (the process pinned to one CPU, ``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``,
  LiteRT ``num_threads=1``): pose and flow seconds per 16-frame clip, side by side on the same decoded clips, in a
  fresh child process; and **extraction memory** (peak RSS, VmHWM) of ``extract_embeddings`` with the pose encoder
  over 1 window video, half of them and all of them, each in a fresh process, with glibc's default heap and with a fixed mmap
  threshold (which returns freed frame buffers at once), plus the encoder alone encoding one video's clips again
  and again (resident memory after the first and the last round: does the encoder itself grow?);
* **no person**: the synthetic sprite sample (:func:`motionmatch.data.synthetic.generate_sample_dataset`) has no
  people; every clip must come back with coverage 0.

Targets (PASS/FAIL): cross-camera pose P@1 >= 2x flow's; fused cross-camera P@10 >= 0.6 (plain weighted fusion, and
fusion with re-ranking); same-camera pose P@1 >= flow's;
pose <= 0.5 s per 16-frame clip on one core; extraction memory flat in the number of videos (peak RSS grows less
than 1% of one video's decoded clips per added video over the last step of 1, 12, 24 videos, as ``bench_memory``
judges it); coverage 0 on every synthetic clip. Each is a record of :class:`bench.harness.BenchRun`, so ``make
bench`` tables them with the others.

Caveat printed with the results: Trial_2's man replays Trial_1's man frame for frame (a second person is added), so
Trial_1:wK and Trial_2:wK show the same movement of the man and a pose tracker that follows him cannot tell them
apart; the Trial_1-only rows (one person, no twin) are the clean measurement.

Usage::

    python -m bench.bench_pose --quick   # 3 clips per window video, memory 1, 3, 6 videos, 20 synthetic videos
    python -m bench.bench_pose           # 9 clips per window video, memory 1, 12, 24 videos, 80 synthetic videos
    python -m bench.bench_pose --people-grid   # and how further people are looked for (PEOPLE_GRID, +9 min)

Prints markdown and writes ``bench/out/pose.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench import pose_fusion
from bench.common import child_main, run_child
from bench.harness import BenchRun

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
PROJECT_ROOT = BENCH_DIR.parent
FRAMES = 16
MOMENT_TOLERANCE_FRAMES = 4
SAME_CAMERA_MIN_SHIFT = FRAMES // 2  # same-camera relevant clips start at least half a clip away from the query
N_BOOT = 1000
CHILD_TIMEOUT_S = 900
MMAP_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}
# descriptor variants compared on one tracking run: (name, PoseSettings fields)
VARIANTS = (
    ("world positions, canonical facing", {"features": ("positions",), "feature_weights": (1.0,)}),
    ("world positions + velocities", {"features": ("positions", "velocities"), "feature_weights": (1.0, 1.0)}),
    ("world positions + velocities, mirror-symmetric", {"features": ("positions", "velocities"),
                                                        "feature_weights": (1.0, 1.0), "symmetric": True}),
    ("joint angles", {"features": ("angles",), "feature_weights": (1.0,)}),
    ("joint angles + velocities", {"features": ("angles", "angle_velocities"), "feature_weights": (1.0, 1.0)}),
    ("limb directions, canonical", {"features": ("limbs",), "feature_weights": (1.0,)}),
    ("positions + limbs + angles + velocities (pose:v1, v2)", {"features": ("positions", "limbs", "angles", "velocities"),
                                                               "feature_weights": (1.0, 1.0, 1.0, 1.0)}),
    ("2D image landmarks, normalised", {"features": ("image",), "feature_weights": (1.0,)}),
    ("2D image landmarks + velocities", {"features": ("image", "image_velocities"), "feature_weights": (1.0, 1.0)}),
)
CHOSEN_VARIANT = VARIANTS[6][0]
PEOPLE_GRID = (  # how further people are looked for (PoseSettings fields; {} is the default), --people-grid
    {"max_people": 1}, {"person_search_frames": (0.0,)}, {}, {"person_search_frames": (0.0, 1 / 3, 2 / 3, 1.0)},
    {"max_people": 3}, {"extra_person_score": 0.7},
)


# ----------------------------------------------------------------------------- clips of the sample
def sample_dir_default() -> Path:
    from motionmatch.config import RAW_DIR

    return RAW_DIR / "pose2sim"


def load_clips(sample_dir: Path, clips_per_video: int) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Every clip of the sample with its metadata (one row per clip) and its frames."""
    from motionmatch.data import load_manifest
    from motionmatch.table import make_clip_id
    from motionmatch.video import ClipSpec, sample_clips

    manifest = load_manifest(sample_dir / "manifest.csv")
    meta = json.loads((sample_dir / "pose2sim_sample.json").read_text())
    window_start = {str((sample_dir / clip["path"]).resolve()): clip["start_frame"] for clip in meta["clips"]}
    spec = ClipSpec(frames_per_clip=FRAMES, frame_stride=1, clips_per_video=clips_per_video)
    rows, frames = [], []
    for video in manifest.itertuples():
        for clip in sample_clips(video.path, spec):
            start = clip.window.frame_indices[0]
            rows.append({"clip_id": make_clip_id(video.path, clip.window.clip_index, "bench-pose"),
                         "video_path": video.path, "label": video.label, "domain": video.domain,
                         "group": video.group, "trial": video.label.split(":")[0], "clip_index": clip.window.clip_index,
                         "clip_start": start, "moment_frame": window_start[str(Path(video.path).resolve())] + start})
            frames.append(clip.frames)
    return pd.DataFrame(rows), frames


# ----------------------------------------------------------------------------- protocols
def _masked(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    return np.where(allowed, scores, -np.inf)


def cross_camera(scores: np.ndarray, table: pd.DataFrame, queries: np.ndarray | None = None,
                 gallery: np.ndarray | None = None) -> dict:
    """P@1 and P@10 (95% CIs) when each query ranks only the other cameras' clips (its own video excluded)."""
    from motionmatch.evaluation import query_metrics, summarise_metrics

    queries = np.ones(len(table), bool) if queries is None else queries
    gallery = np.ones(len(table), bool) if gallery is None else gallery
    domain = table["domain"].to_numpy()
    allowed = (domain[:, None] != domain[None, :])[queries][:, gallery]
    parts = query_metrics(_masked(scores[queries][:, gallery], allowed), table[queries], table[gallery],
                          exclude="video", ks=(1, 10), pair_scores=False)
    return summarise_metrics([parts], ("P@1", "P@10"), n_boot=N_BOOT, with_auc=False)


def same_camera(scores: np.ndarray, table: pd.DataFrame, rows: np.ndarray | None = None) -> dict:
    """P@1 (95% CI) when each query ranks its own camera's clips at least half a clip away from it in time.

    ``rows`` restricts queries and gallery (e.g. to one trial)."""
    from motionmatch.evaluation import query_metrics, summarise_metrics

    if rows is not None:
        scores, table = scores[np.ix_(rows, rows)], table[rows]
    domain, video = table["domain"].to_numpy(), table["video_path"].to_numpy()
    start = table["clip_start"].to_numpy()
    overlapping = (video[:, None] == video[None, :]) & (np.abs(start[:, None] - start[None, :]) < SAME_CAMERA_MIN_SHIFT)
    allowed = (domain[:, None] == domain[None, :]) & ~overlapping
    parts = query_metrics(_masked(scores, allowed), table, table, exclude="none", ks=(1,), pair_scores=False)
    return summarise_metrics([parts], ("P@1",), n_boot=N_BOOT, with_auc=False)


def moment_at_1(scores: np.ndarray, table: pd.DataFrame, queries: np.ndarray | None = None) -> dict:
    """Share of queries whose top cross-camera hit is the same trial within +-4 frames of the query's moment."""
    from motionmatch.metrics import bootstrap_ci, precision_at_k, rank_relevance

    queries = np.ones(len(table), bool) if queries is None else queries
    domain, trial, moment = (table[c].to_numpy() for c in ("domain", "trial", "moment_frame"))
    relevant = (trial[:, None] == trial[None, :]) & (np.abs(moment[:, None] - moment[None, :]) <= MOMENT_TOLERANCE_FRAMES)
    excluded = domain[:, None] == domain[None, :]
    ranked, _ = rank_relevance(scores[queries], relevant[queries], excluded[queries])
    values = precision_at_k(ranked, 1)
    low, high = bootstrap_ci(values, n_boot=N_BOOT)
    return {"moment@1": float(values.mean()), "moment@1_lo": low, "moment@1_hi": high, "n_queries": int(len(values))}


def people_pooling(people: list[list[list]], settings, table: pd.DataFrame) -> list[dict]:
    """How a clip's people become one score, compared on one tracking run (the chosen descriptor): the first person
    only (``pose:v1``), the coverage-weighted sum (``pose:v2``), the best pair of people, a symmetric Chamfer score
    (each person's best match, averaged both ways)."""
    from motionmatch.encoders.pose import describe_tracked
    from motionmatch.encoders.pose_descriptor import no_person_vector
    from motionmatch.encoders.pose_people import pool_people

    described = [[describe_tracked(track, settings) for track in clip_people] for clip_people in people]
    persons = [[vector for vector, share in clip if share > 0] for clip in described]

    def pair_scores(reduce) -> np.ndarray:
        out = np.full((len(persons), len(persons)), -1.0)
        for i, a in enumerate(persons):
            for j, b in enumerate(persons):
                if a and b:
                    out[i, j] = reduce(np.stack(a) @ np.stack(b).T)
        return out

    first = np.stack([clip[0][0] for clip in described])
    pooled = np.stack([pool_people(clip, lambda: no_person_vector(settings.dim))[0] for clip in described])
    scores = {"first person only (pose:v1)": first @ first.T, "coverage-weighted sum (pose:v2)": pooled @ pooled.T,
              "best pair of people": pair_scores(np.max),
              "symmetric Chamfer": pair_scores(lambda s: 0.5 * (s.max(1).mean() + s.max(0).mean()))}
    trial_one = (table["trial"] == "Trial_1").to_numpy()
    counts = np.array([len(p) for p in persons])
    rows = []
    for name, matrix in scores.items():
        cross = cross_camera(matrix, table)
        rows.append({"pooling": name, "cross_P@1": cross["P@1"], "cross_P@10": cross["P@10"],
                     "trial_2_queries_P@10": cross_camera(matrix, table, ~trial_one)["P@10"],
                     "same_P@1": same_camera(matrix, table)["P@1"]})
    rows.append({"people_per_clip": {trial: float(counts[(table["trial"] == trial).to_numpy()].mean())
                                     for trial in sorted(table["trial"].unique())}})
    return rows


def people_grid(frames: list[np.ndarray], table: pd.DataFrame, log) -> list[dict]:
    """The pose channel alone, the sample tracked again under each setting of :data:`PEOPLE_GRID`."""
    from motionmatch.encoders import build_encoder

    trial_one = (table["trial"] == "Trial_1").to_numpy()
    rows = []
    for fields in PEOPLE_GRID:
        began = time.perf_counter()
        vectors, _ = build_encoder("pose", **fields).encode_with_coverage(frames)
        scores = vectors @ vectors.T
        cross = cross_camera(scores, table)
        rows.append({"settings": fields or "defaults", "cross_P@1": cross["P@1"], "cross_P@10": cross["P@10"],
                     "trial_2_queries_P@10": cross_camera(scores, table, ~trial_one)["P@10"],
                     "same_P@1": same_camera(scores, table)["P@1"], "seconds": time.perf_counter() - began})
        log(f"people grid {fields or 'defaults'}: cross P@10 {cross['P@10']:.3f}")
    return rows


def twin_check(pose: np.ndarray, table: pd.DataFrame) -> dict:
    """Per camera: mean pose cosine of Trial_1 vs Trial_2 clips at the same moment, and at other moments."""
    out = {}
    for camera in sorted(table["domain"].unique()):
        one = np.flatnonzero((table["domain"] == camera).to_numpy() & (table["trial"] == "Trial_1").to_numpy())
        two = np.flatnonzero((table["domain"] == camera).to_numpy() & (table["trial"] == "Trial_2").to_numpy())
        same = table["moment_frame"].to_numpy()[one][:, None] == table["moment_frame"].to_numpy()[two][None, :]
        block = pose[np.ix_(one, two)]
        out[camera] = {"same_moment": float(block[same].mean()), "other_moments": float(block[~same].mean())}
    return out


# ----------------------------------------------------------------------------- children: cost and memory
def _pin_to_one_core() -> int:
    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return cpu


def _own_peak_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def _cost_child(spec: dict) -> dict:
    """Pose and flow seconds per clip, alternating on the same decoded clips, pinned to one core."""
    from motionmatch.encoders import build_encoder
    from motionmatch.video import ClipSpec, sample_clips

    cpu = _pin_to_one_core()
    paths = spec["paths"]
    pose, flow = build_encoder("pose", num_threads=1), build_encoder("flow")
    decode_s, clips = [], []
    for path in paths:
        started = time.perf_counter()
        (clip,) = sample_clips(path, ClipSpec(FRAMES, 1, 1))
        decode_s.append(time.perf_counter() - started)
        clips.append(clip.frames)
    pose.encode(clips[:1])  # warm-up: LiteRT's first invocations allocate
    flow.encode(clips[:1])
    pose_s, flow_s = [], []
    for clip in clips:
        started = time.perf_counter()
        pose.encode_with_coverage([clip])
        pose_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        flow.encode([clip])
        flow_s.append(time.perf_counter() - started)
    return {"cpu": cpu, "clips": len(clips), "frame_size": list(clips[0].shape[1:3]),
            "pose_s_per_clip": {"median": float(np.median(pose_s)), "mean": float(np.mean(pose_s)),
                                "max": float(np.max(pose_s))},
            "flow_s_per_clip": {"median": float(np.median(flow_s)), "mean": float(np.mean(flow_s)),
                                "max": float(np.max(flow_s))},
            "decode_s_per_clip": {"median": float(np.median(decode_s)), "mean": float(np.mean(decode_s))}}


def _memory_child(spec: dict) -> dict:
    """Peak RSS of extract_embeddings with the pose encoder over the first ``videos`` window videos (inline decode)."""
    from motionmatch.data import load_manifest
    from motionmatch.encoders import build_encoder
    from motionmatch.extract import extract_embeddings
    from motionmatch.video import ClipSpec

    _pin_to_one_core()
    manifest = load_manifest(Path(spec["sample"]) / "manifest.csv").head(spec["videos"])
    encoder = build_encoder("pose")
    baseline = _own_peak_mib()
    started = time.perf_counter()
    summary = extract_embeddings(manifest, encoder, spec["out"], clip_spec=ClipSpec(FRAMES, 1, spec["clips_per_video"]),
                                 workers=0, overwrite=True, progress=False, print_fn=lambda *_: None)
    if summary.failed:
        raise RuntimeError(f"extraction failed: {summary.failures[:3]}")
    return {"videos": int(len(manifest)), "clips": int(summary.clips_embedded), "seconds": time.perf_counter() - started,
            "baseline_mib": baseline, "peak_mib": _own_peak_mib()}


def _encoder_memory_child(spec: dict) -> dict:
    """The encoder alone: one video's clips encoded ``rounds`` times; resident memory after the first and last round."""
    from motionmatch.encoders import build_encoder
    from motionmatch.video import ClipSpec, sample_clips

    _pin_to_one_core()
    clips = [clip.frames for clip in sample_clips(spec["path"], ClipSpec(FRAMES, 1, 3))]
    encoder = build_encoder("pose")
    resident = []
    for _ in range(spec["rounds"]):
        encoder.encode(clips)
        with open("/proc/self/status", encoding="ascii") as status:
            resident.append(next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:")))
    return {"clips_encoded": spec["rounds"] * len(clips), "rss_after_first_mib": resident[0],
            "rss_after_last_mib": resident[-1], "peak_mib": _own_peak_mib()}


def _child(spec: dict) -> dict:
    children = {"cost": _cost_child, "memory": _memory_child, "encoder_memory": _encoder_memory_child}
    return children[spec["mode"]](spec)


# ----------------------------------------------------------------------------- the no-person check
def synthetic_no_person(folder: Path, videos_per_class: int) -> dict:
    """Pose coverage on the sprite sample (no people): how many clips the encoder wrongly says show a person."""
    from motionmatch.data import generate_sample_dataset
    from motionmatch.encoders import build_encoder
    from motionmatch.video import ClipSpec, sample_clips

    manifest = pd.read_csv(generate_sample_dataset(folder, seed=1, videos_per_class_per_domain=videos_per_class,
                                                   groups_per_class_per_domain=2, progress=False))
    encoder = build_encoder("pose")
    coverage = []
    for path in manifest["path"]:
        clips = [clip.frames for clip in sample_clips(folder / path, ClipSpec(FRAMES, 2, 4))]
        coverage += encoder.encode_with_coverage(clips)[1].tolist()
    coverage = np.asarray(coverage)
    return {"videos": int(len(manifest)), "clips": int(len(coverage)), "clips_with_person": int((coverage > 0).sum()),
            "max_coverage": float(coverage.max())}


# ----------------------------------------------------------------------------- report
def _interval(result: dict, name: str) -> str:
    return f"[{result[name + '_lo']:.3f}, {result[name + '_hi']:.3f}]"


def _ci(result: dict, name: str) -> str:
    return f"{result[name]:.3f} {_interval(result, name)}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pose", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 clips per window video, smaller memory and synthetic runs")
    parser.add_argument("--sample", type=Path, default=None, help="folder of the Pose2Sim sample (default data/raw/pose2sim)")
    parser.add_argument("--wheel", type=Path, default=None, help="a local pose2sim-0.10.49 wheel (default: fetched)")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "pose.json")
    parser.add_argument("--people-grid", action="store_true",
                        help="also track the sample again under each setting of PEOPLE_GRID (about 90 s each)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, _child)

    from motionmatch.data.pose2sim import write_pose2sim_sample
    from motionmatch.encoders import build_encoder
    from motionmatch.encoders.pose import PoseSettings, describe_tracked
    from motionmatch.encoders.pose_descriptor import no_person_vector
    from motionmatch.encoders.pose_people import pool_people

    run = BenchRun("pose", argv, quick=args.quick, out=args.out)
    clips_per_video = 3 if args.quick else 9
    sample = args.sample or sample_dir_default()
    log = lambda message: print(f"[pose] {message}", file=sys.stderr, flush=True)  # noqa: E731
    write_pose2sim_sample(sample, wheel=args.wheel, print_fn=log)
    table, frames = load_clips(sample, clips_per_video)
    log(f"{len(table)} clips of {table['video_path'].nunique()} window videos")

    pose_encoder = build_encoder("pose")
    tracking_started = time.perf_counter()
    people = [pose_encoder.track_people(clip) for clip in frames]  # per clip, one track per person
    tracking_s = time.perf_counter() - tracking_started
    variants = {}
    for name, fields in VARIANTS:  # each descriptor, pooled over the clip's people as pose:v2 does
        settings = dataclasses.replace(pose_encoder.settings, **fields)
        described = [pool_people([describe_tracked(track, settings) for track in clip_people],
                                 lambda: no_person_vector(settings.dim)) for clip_people in people]
        variants[name] = (np.stack([vector for vector, _ in described]), np.array([share for _, share in described]))
    pose_vectors, coverage = variants[CHOSEN_VARIANT]
    check_vectors, check_coverage = pose_encoder.encode_with_coverage(frames[:3])
    assert np.allclose(check_vectors, pose_vectors[:3], atol=1e-5), "the bench's pooling must match encode()"
    pooling_rows = people_pooling(people, pose_encoder.settings, table)
    del people
    grid_rows = people_grid(frames, table, log) if args.people_grid else []
    flow_started = time.perf_counter()
    flow_vectors = build_encoder("flow").encode(frames)
    flow_s = time.perf_counter() - flow_started
    del frames
    log(f"tracked in {tracking_s:.0f} s, flow in {flow_s:.0f} s")

    pose_scores, flow_scores = pose_vectors @ pose_vectors.T, flow_vectors @ flow_vectors.T
    trial_one = (table["trial"] == "Trial_1").to_numpy()
    fusions = pose_fusion.two_fold(table, flow_vectors, pose_vectors, coverage, n_boot=N_BOOT, log=log)
    fusion = fusions["fused"]
    weights = [fold["weight"] for fold in fusion["folds"]]
    fused_mean = pose_fusion.plain_fused(table, flow_vectors, pose_vectors, coverage, float(np.mean(weights)))
    methods = {"flow": flow_scores, "pose": pose_scores, "fused": None}
    results = {}
    for method, scores in methods.items():
        if method == "fused":
            results[method] = {"cross": {k: v for k, v in fusion.items() if k != "folds"},
                               "cross_trial_1": cross_camera(fused_mean, table, trial_one, trial_one),
                               "same": same_camera(fused_mean, table),
                               "same_trial_1": same_camera(fused_mean, table, trial_one),
                               "moment": moment_at_1(fused_mean, table),
                               "note": f"cross: held-out 2-fold (weights {weights}); other rows with their mean"}
            continue
        results[method] = {"cross": cross_camera(scores, table), "cross_trial_1": cross_camera(scores, table, trial_one,
                                                                                               trial_one),
                           "cross_queries_trial_2": cross_camera(scores, table, ~trial_one),
                           "same": same_camera(scores, table), "same_trial_1": same_camera(scores, table, trial_one),
                           "moment": moment_at_1(scores, table)}
    variant_rows = []
    for name, (vectors, _) in variants.items():
        scores = vectors @ vectors.T
        cross = cross_camera(scores, table)
        variant_rows.append({"variant": name, "dim": int(vectors.shape[1]), "cross_P@1": cross["P@1"],
                             "cross_P@10": cross["P@10"],
                             "trial_1_cross_P@1": cross_camera(scores, table, trial_one, trial_one)["P@1"],
                             "moment@1": moment_at_1(scores, table)["moment@1"],
                             "same_P@1": same_camera(scores, table)["P@1"]})
    twins = twin_check(pose_scores, table)
    log("retrieval done; cost and memory in child processes")

    cost = run_child("bench.bench_pose", {"mode": "cost", "paths": sorted(table["video_path"].unique())},
                     CHILD_TIMEOUT_S, what="pose cost child")
    all_videos = 6 if args.quick else int(table["video_path"].nunique())
    memory = []
    with tempfile.TemporaryDirectory(prefix="bench_pose_") as tmp:
        # glibc's default heap keeps freed frame buffers for a while (see bench_memory); a fixed mmap threshold
        # returns them at once, which tells fragmentation from growth
        sizes = (1, all_videos // 2, all_videos)  # judged on the last step, as bench_memory (a queue fills first)
        for videos, env in [(n, e) for e in ({}, MMAP_ENV) for n in sizes]:
            row = run_child("bench.bench_pose", {"mode": "memory", "sample": str(sample), "videos": videos,
                                                 "out": str(Path(tmp) / f"out_{videos}_{len(env)}"),
                                                 "clips_per_video": 3}, CHILD_TIMEOUT_S, env=env,
                            what=f"pose memory child x {videos}")
            memory.append({**row, "malloc": "MALLOC_MMAP_THRESHOLD_=131072" if env else "glibc default"})
        encoder_memory = run_child("bench.bench_pose", {"mode": "encoder_memory", "rounds": 5 if args.quick else 20,
                                                        "path": sorted(table["video_path"].unique())[0]},
                                   CHILD_TIMEOUT_S, what="pose encoder memory child")
        log("no-person check on the synthetic sample")
        synthetic = synthetic_no_person(Path(tmp) / "synthetic", 1 if args.quick else 4)

    flow_cross, pose_cross = results["flow"]["cross"], results["pose"]["cross"]
    pose_cost = cost["pose_s_per_clip"]["median"]
    run.target("pose_cross_p1", pose_cross["P@1"] / max(flow_cross["P@1"], 1e-9), "x",
               "cross-camera pose P@1 >= 2x flow's", passed=bool(pose_cross["P@1"] >= 2 * flow_cross["P@1"]),
               detail=f"pose {_ci(pose_cross, 'P@1')} vs flow {_ci(flow_cross, 'P@1')}")
    run.target("fused_cross_p10", fusion["P@10"], "",
               "fused cross-camera P@10 >= 0.6 (weight chosen on the other half of the labels)",
               passed=bool(fusion["P@10"] >= 0.6),
               detail=f"95% CI {_interval(fusion, 'P@10')}; pose alone {_ci(pose_cross, 'P@10')}; weights {weights}")
    reranked = fusions["fused + re-ranking"]
    run.target("fused_reranked_cross_p10", reranked["P@10"], "",
               "fused + re-ranking cross-camera P@10 >= 0.6 (weight and re-ranker chosen on the other half)",
               passed=bool(reranked["P@10"] >= 0.6),
               detail=f"95% CI {_interval(reranked, 'P@10')}; pose + re-ranking {_ci(fusions['pose + re-ranking'], 'P@10')}; "
                      "chosen: " + "; ".join(f"w={f['weight']:.2f}, {f['reranker']}" for f in reranked["folds"]))
    run.target("same_camera", results["pose"]["same"]["P@1"], "", "same-camera pose P@1 no worse than flow's",
               passed=bool(results["pose"]["same"]["P@1"] >= results["flow"]["same"]["P@1"]),
               detail=f"95% CI {_interval(results['pose']['same'], 'P@1')}; flow {_ci(results['flow']['same'], 'P@1')}")
    run.target("pose_cost", pose_cost, "s per clip", "pose <= 0.5 s per 16-frame clip on one core",
               passed=bool(pose_cost <= 0.5),
               detail=f"median, side by side: flow {cost['flow_s_per_clip']['median']:.3f} s, decode "
                      f"{cost['decode_s_per_clip']['median']:.3f} s, at {cost['frame_size'][1]}x{cost['frame_size'][0]}")
    height, width = cost["frame_size"][:2]
    allowed = 0.01 * 3 * FRAMES * height * width * 3 / 2 ** 20  # 1% of one window video's decoded clips (3 a video)
    default_rows = [m for m in memory if m["malloc"] == "glibc default"]
    mmap_rows = [m for m in memory if m["malloc"] != "glibc default"]

    def last_step(rows):
        return (rows[-1]["peak_mib"] - rows[-2]["peak_mib"]) / max(1, rows[-1]["videos"] - rows[-2]["videos"])

    run.target("flat_memory", last_step(default_rows), "MiB per added video",
               f"extraction peak RSS with the pose encoder grows < {allowed:.2f} MiB per added video over the last "
               f"step of the folder sizes (1% of one video's decoded clips, as bench_memory)",
               passed=bool(last_step(default_rows) < allowed),
               detail=f"{sizes[-2]} to {sizes[-1]} videos, glibc default; {last_step(mmap_rows):+.2f} MiB per video "
                      f"with MALLOC_MMAP_THRESHOLD_=131072; peaks " + ", ".join(
                          f"{m['videos']}: {m['peak_mib']:.0f}" for m in default_rows) + " MiB")
    run.target("no_person", synthetic["clips_with_person"], "clips with a person",
               "coverage 0 on every synthetic sprite clip (no people)", passed=synthetic["clips_with_person"] == 0,
               detail=f"of {synthetic['clips']} clips (max coverage {synthetic['max_coverage']:.2f})")
    lines = [f"Pose2Sim sample: {table['video_path'].nunique()} window videos (2 trials x 4 cameras x 3 windows of "
             f"0.55 s), {len(table)} clips of {FRAMES} frames (stride 1, {clips_per_video} per window video); "
             f"pose coverage mean {coverage.mean():.3f} (min {coverage.min():.2f}). 95% bootstrap CIs over queries.",
             "", "| method | cross-camera P@1 | cross-camera P@10 | same-camera P@1 | moment@1 | "
             "Trial_1 only: cross P@1 | cross P@10 | same-camera P@1 |", "|---|---|---|---|---|---|---|---|"]
    for method, result in results.items():
        lines.append(f"| {method} | {_ci(result['cross'], 'P@1')} | {_ci(result['cross'], 'P@10')} | "
                     f"{_ci(result['same'], 'P@1')} | {_ci(result['moment'], 'moment@1')} | "
                     f"{_ci(result['cross_trial_1'], 'P@1')} | {_ci(result['cross_trial_1'], 'P@10')} | "
                     f"{_ci(result['same_trial_1'], 'P@1')} |")
    lines += ["", f"Cross-camera chance P@1 = P@10 = {1 / table['label'].nunique():.3f} (6 labels, balanced). Fusion "
              "and re-ranking, each chosen on the queries of half of the labels and measured on the other half, both "
              "ways round (bench/pose_fusion.py):", "",
              "| row | cross-camera P@1 | cross-camera P@10 | chosen (fold 1; fold 2) |", "|---|---|---|---|"]
    lines += [f"| {row} | {_ci(fusions[row], 'P@1')} | {_ci(fusions[row], 'P@10')} | "
              + "; ".join(f"w={f['weight']:.2f}, {f['reranker']}" for f in fusions[row]["folds"]) + " |"
              for row in pose_fusion.ROWS]
    lines += ["", "Descriptor variants (same tracking run):", "",
              "| variant | dim | cross P@1 | cross P@10 | Trial_1 cross P@1 | moment@1 | same-camera P@1 |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['variant']} | {r['dim']} | {r['cross_P@1']:.3f} | {r['cross_P@10']:.3f} | "
              f"{r['trial_1_cross_P@1']:.3f} | {r['moment@1']:.3f} | {r['same_P@1']:.3f} |" for r in variant_rows]
    counts = pooling_rows[-1]["people_per_clip"]
    lines += ["", "How a clip's people become one score (chosen descriptor, same tracking run; people found per clip: "
              + ", ".join(f"{trial} {value:.2f}" for trial, value in counts.items()) + "):", "",
              "| pooling | cross P@1 | cross P@10 | Trial_2 queries: cross P@10 | same-camera P@1 |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['pooling']} | {r['cross_P@1']:.3f} | {r['cross_P@10']:.3f} | {r['trial_2_queries_P@10']:.3f} | "
              f"{r['same_P@1']:.3f} |" for r in pooling_rows[:-1]]
    if grid_rows:
        lines += ["", "How further people are looked for (--people-grid; the pose channel alone, tracked again):", "",
                  "| settings | cross P@1 | cross P@10 | Trial_2 queries: cross P@10 | same-camera P@1 |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['settings']} | {r['cross_P@1']:.3f} | {r['cross_P@10']:.3f} | "
                  f"{r['trial_2_queries_P@10']:.3f} | {r['same_P@1']:.3f} |" for r in grid_rows]
    lines += ["", "Trial_1 vs Trial_2, same camera, pose cosine at the same moment / other moments: "
              + ", ".join(f"{c} {v['same_moment']:.2f} / {v['other_moments']:.2f}" for c, v in twins.items())
              + " (Trial_2's man replays Trial_1's; a camera whose tracker follows him shows it).",
              "", f"Cost on one core (cpu {cost['cpu']}, {cost['clips']} clips): pose {pose_cost:.3f} s per clip "
              f"(mean {cost['pose_s_per_clip']['mean']:.3f}), flow {cost['flow_s_per_clip']['median']:.3f} s, "
              f"decoding {cost['decode_s_per_clip']['median']:.3f} s.",
              "Extraction peak RSS with the pose encoder (inline decode): "
              + ", ".join(f"{m['videos']} video(s) / {m['clips']} clips, {m['malloc']}: {m['peak_mib']:.0f} MiB "
                          f"({m['seconds']:.0f} s)" for m in memory) + "; the encoder alone, one video's clips "
              f"encoded {encoder_memory['clips_encoded']} times: {encoder_memory['rss_after_first_mib']:.0f} MiB "
              f"resident after the first round, {encoder_memory['rss_after_last_mib']:.0f} MiB after the last.", ""]
    return run.finish("\n".join(lines), sample=str(sample), clips=len(table), clips_per_video=clips_per_video,
                      pose_preprocessing=pose_encoder.preprocessing(),
                      pose_settings=dataclasses.asdict(PoseSettings()),
                      coverage={"mean": float(coverage.mean()), "min": float(coverage.min())},
                      results=results, fusion=fusion, fusions=fusions, variants=variant_rows, pooling=pooling_rows,
                      people_grid=grid_rows, twin_check=twins, tracking_s=tracking_s, flow_s=flow_s, cost=cost,
                      memory=memory, encoder_memory=encoder_memory, synthetic=synthetic)


if __name__ == "__main__":
    main()
