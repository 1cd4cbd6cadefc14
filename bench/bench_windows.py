"""Dense-window benchmark: which window length and stride localise planted motion segments, at what cost.

Long videos come from ``motionmatch.data.long_synthetic.generate_long_videos`` (cached in
``bench/out/windows_videos``; ``ground_truth.csv`` tiles each timeline with labelled segments and
distractor spans, ``cuts.csv`` holds the hard cuts). Windows are placed by
``motionmatch.video.plan_windows`` inside the **true** shots (the cut detector is measured apart,
in ``bench_shots.py``), decoded by ``iter_window_clips`` and embedded with the weight-free
FlowEncoder (16 frames per window). The grid restarts at each shot, so the windows of a stride of
1 s or 2 s are a subset of those of 0.5 s: each frame stride is embedded once, at the finest stride.

Scores, for each (frame stride, stride_s):

* **1-NN accuracy**: each window whose midpoint lies in a labelled segment takes the label of its
  nearest window (cosine) in *another* video (distractor windows stay in the gallery; a match to
  one is wrong). Same-video neighbours are excluded, or the overlapping next window would answer.
* **mean tIoU**: each labelled segment is localised as the longest run of consecutive windows that
  overlap it and carry its label by 1-NN; the score is the run's span's temporal IoU with the
  segment (0 when no window finds it). This is the localisation proxy the default is chosen on.
* **cost**: windows per video-hour and seconds per video-hour (decode + encode, this machine).

The default (``motionmatch.video.DEFAULT_STRIDE_S``) is :func:`recommend`'s choice: among the
settings whose mean tIoU is not significantly below the best one's (paired bootstrap over segments,
95% CI of the difference reaches 0), the largest stride (the cheapest).

Usage::

    python -m bench.bench_windows --quick   # 2 x 40 s at 96x72 (too small to choose by: not judged)
    python -m bench.bench_windows           # 8 x 120 s at 160x120

Prints a markdown table and writes ``bench/out/windows.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import OUT_DIR, BenchRun
from motionmatch.data import DISTRACTOR_LABEL, generate_long_videos
from motionmatch.encoders import build_encoder
from motionmatch.metrics import bootstrap_ci
from motionmatch.video import (DEFAULT_STRIDE_S, DEFAULT_WINDOW_FRAME_STRIDE, ClipSpec, WindowSpec, iter_window_clips,
                               open_with_timestamps, plan_windows, shots_from_cuts)

FRAME_STRIDES = (2, 4)  # 16 frames every 2 (1.3 s at 24 fps, the sample clips' span) or every 4 (2.6 s, V-JEPA 2's evals)
STRIDES_S = (0.5, 1.0, 2.0)
TIE = 0.0  # a setting whose paired CI of (best - it) reaches this is "not worse"; ties are broken by cost
QUICK = {"n_videos": 2, "duration_s": 40.0, "size": (96, 72)}
FULL = {"n_videos": 8, "duration_s": 120.0, "size": (160, 120)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 small videos (a smoke test of the whole path)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/windows.json)")
    return parser.parse_args(argv)


def _videos(setting: dict, seed: int) -> Path:
    folder = OUT_DIR / f"windows_videos_{setting['n_videos']}x{setting['duration_s']:g}s_{seed}"
    if not (folder / "ground_truth.csv").exists():
        generate_long_videos(folder, n_videos=setting["n_videos"], duration_s=setting["duration_s"], seed=seed,
                             size=setting["size"], progress=False)
    return folder


def embed_windows(folder: Path, frame_stride: int, encoder) -> tuple[pd.DataFrame, float]:
    """Windows at the finest stride inside the true shots, embedded; returns (rows, seconds spent)."""
    truth_cuts = pd.read_csv(folder / "cuts.csv")
    spec = ClipSpec(frames_per_clip=16, frame_stride=frame_stride)
    rows, vectors, seconds = [], [], 0.0
    for video in sorted(pd.read_csv(folder / "ground_truth.csv").video.unique()):
        path = folder / video
        started = time.perf_counter()
        _, info, stamps = open_with_timestamps(path, "pyav")
        cut_frames = np.searchsorted(stamps, truth_cuts[truth_cuts.video == video].time_s.to_numpy() - 1e-6)
        shots = shots_from_cuts(cut_frames, stamps, info.duration_s)
        windows, _ = plan_windows(info, spec, WindowSpec(stride_s=min(STRIDES_S), shots="none"), stamps, shots)
        batch = []
        for clip in iter_window_clips(path, windows):
            batch.append(clip)
            if len(batch) == 16 or clip.window.clip_index == len(windows) - 1:
                vectors.extend(encoder.encode([c.frames for c in batch]))
                batch = []
        seconds += time.perf_counter() - started
        for window in windows:
            shot = int(np.searchsorted([s.start_frame for s in shots], window.frame_indices[0], side="right")) - 1
            offset = window.start_s - shots[shot].start_s
            rows.append({"video": video, "start_s": window.start_s, "end_s": window.end_s, "shot": shot,
                         "offset_s": offset, "aligned_to_end": abs(offset / min(STRIDES_S) - round(offset / min(STRIDES_S))) > 1e-3})
    table = pd.DataFrame(rows)
    table["vector"] = list(np.asarray(vectors, dtype=np.float32))
    return table, seconds


def _labels(table: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """The ground-truth label at each window's midpoint."""
    out = []
    for row in table.itertuples():
        mid = (row.start_s + row.end_s) / 2
        spans = truth[(truth.video == row.video) & (truth.start_s <= mid) & (truth.end_s > mid)]
        out.append(spans.label.iloc[0] if len(spans) else DISTRACTOR_LABEL)
    return np.asarray(out)


def score(table: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """1-NN accuracy (other videos only) and mean tIoU of label runs against the labelled segments."""
    table = table.reset_index(drop=True)
    vectors = np.stack(table.vector.to_numpy())
    similarity = vectors @ vectors.T
    same_video = table.video.to_numpy()[:, None] == table.video.to_numpy()[None, :]
    similarity[same_video] = -np.inf
    truth_label = _labels(table, truth)
    predicted = truth_label[np.argmax(similarity, axis=1)]
    queries = truth_label != DISTRACTOR_LABEL
    accuracy = float(np.mean(predicted[queries] == truth_label[queries]))
    ious = []
    for segment in truth[truth.label != DISTRACTOR_LABEL].itertuples():
        rows = table[(table.video == segment.video) & (table.end_s > segment.start_s) & (table.start_s < segment.end_s)]
        hit = (predicted[rows.index] == segment.label)
        best, run = 0.0, []
        for index, found in zip(rows.index, hit):
            run = run + [index] if found else []
            if run:
                start, end = table.start_s[run[0]], table.end_s[run[-1]]
                inter = max(0.0, min(end, segment.end_s) - max(start, segment.start_s))
                union = max(end, segment.end_s) - min(start, segment.start_s)
                best = max(best, inter / union)
        ious.append(best)
    return {"accuracy_1nn": accuracy, "mean_tiou": float(np.mean(ious)), "queries": int(queries.sum()),
            "segments": len(ious), "tiou": ious}


def paired_ci(best: list[float], other: list[float], n_boot: int = 2000, seed: int = 0,
              confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap CI (over segments, paired: the package's one bootstrap) of mean tIoU(best) - mean tIoU(other)."""
    return bootstrap_ci(np.asarray(best) - np.asarray(other), n_boot=n_boot, seed=seed, confidence=confidence)


def recommend(rows: list[dict]) -> dict:
    """Among settings not worse than the best mean tIoU (paired 95% CI of the difference reaches TIE or below),
    the largest stride (the cheapest); then the higher mean tIoU."""
    best = max(rows, key=lambda r: r["mean_tiou"])
    for r in rows:
        r["ci_vs_best"] = paired_ci(best["tiou"], r["tiou"])
    close = [r for r in rows if r["ci_vs_best"][0] <= TIE]
    return max(close, key=lambda r: (r["stride_s"], r["mean_tiou"]))


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a markdown table; write bench/out/windows.json; return the results."""
    args = parse_args(argv)
    run = BenchRun("windows", argv, quick=args.quick, out=args.out)
    setting = QUICK if args.quick else FULL
    folder = _videos(setting, args.seed)
    truth = pd.read_csv(folder / "ground_truth.csv")
    hours = truth.groupby("video").end_s.max().sum() / 3600.0
    encoder = build_encoder("flow")
    rows = []
    for frame_stride in FRAME_STRIDES:
        finest, seconds = embed_windows(folder, frame_stride, encoder)
        per_window = seconds / len(finest)
        for stride_s in STRIDES_S:
            step = int(round(stride_s / min(STRIDES_S)))
            grid = np.round(finest.offset_s.to_numpy(float) / min(STRIDES_S)).astype(int)
            kept = finest[finest["aligned_to_end"].to_numpy(bool) | (grid % step == 0)]
            result = score(kept, truth)
            rows.append({"frame_stride": frame_stride, "window_s": round(31 / 24 if frame_stride == 2 else 61 / 24, 2),
                         "stride_s": stride_s, **result, "windows_per_hour": len(kept) / hours,
                         "seconds_per_hour": len(kept) * per_window / hours})
    choice = recommend(rows)
    lines = ["| frames x step | window s | stride s | 1-NN acc | mean tIoU | best - this (95% CI) | windows / video-hour "
             "| s / video-hour |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["ci_vs_best"]
        lines.append(f"| 16 x {r['frame_stride']} | {r['window_s']} | {r['stride_s']:g} | {r['accuracy_1nn']:.3f} | "
                     f"{r['mean_tiou']:.3f} | {low:+.3f} .. {high:+.3f} | {r['windows_per_hour']:.0f} | "
                     f"{r['seconds_per_hour']:.0f} |")
    default = (DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_STRIDE_S)
    agrees = (choice["frame_stride"], choice["stride_s"]) == default
    lines += ["", f"recommended: 16 x {choice['frame_stride']}, stride {choice['stride_s']:g} s "
              f"({setting['n_videos']} videos x {setting['duration_s']:g} s, {hours * 60:.1f} min of video); the "
              f"package default (clips.DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_STRIDE_S) is 16 x {default[0]}, "
              f"{default[1]:g} s" + (" (agrees)" if agrees else " (DISAGREES)")
              + (" — quick mode is too small to choose by; the default rests on the full run." if args.quick else ".")]
    summary = "\n".join(lines)
    run.target("default", choice["mean_tiou"], "mean tIoU",
               "the dense-window default (video.DEFAULT_WINDOW_FRAME_STRIDE, DEFAULT_STRIDE_S) is the measured choice",
               passed=bool(agrees), detail=f"measured choice 16 x {choice['frame_stride']} every {choice['stride_s']:g} s; "
                                           f"the default is 16 x {default[0]} every {default[1]:g} s")
    return run.finish(summary, setting={**setting, "size": list(setting["size"]), "seed": args.seed},
                      rows=[{k: v for k, v in r.items() if k != "tiou"} for r in rows],
                      recommended={"frame_stride": choice["frame_stride"], "stride_s": choice["stride_s"]})


if __name__ == "__main__":
    main()
