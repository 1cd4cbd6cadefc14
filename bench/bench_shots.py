"""Shot-boundary benchmark: PySceneDetect (content, adaptive) vs TransNetV2 on generated long videos.

The videos come from ``motionmatch.data.long_synthetic.generate_long_videos`` (cached in
``bench/out/shots_videos``): timelines of 2-20 s motion segments where a segment starts either
with a **hard cut** (new background, sprite, colours, camera: ``cuts.csv`` holds the exact times)
or **continuously** (same shot, only the motion changes: these must not be reported as cuts).
Inside a segment the sprite may also jump at a 2 s motion-cycle start; that is not a cut either.

Every method runs through ``motionmatch.video.shots.detect_shots`` with its default options (plus
ContentDetector at a lower threshold, labelled as such), one after the other in one process, so
the speeds are side by side. Scored with ``motionmatch.metrics.boundary_f1`` (one-to-one matching
within ``--tolerance-s``, 0.5 s by default), pooled over all videos (counts summed). Speed is
seconds of detection (decoding included) per hour of video, wall clock and CPU time (all threads
of this process); the TransNetV2 model is loaded once before timing (its load time is reported).

The default method (``motionmatch.video.shots.DEFAULT_METHOD``) is :func:`recommend`'s choice: the best
pooled F1; a method within 0.02 F1 of the best that is faster wins the tie.

Usage::

    python -m bench.bench_shots --quick   # 2 x 12 s at 96x72, about a minute (too few cuts: not judged)
    python -m bench.bench_shots           # 4 x 120 s at 320x240

Prints a markdown table and writes ``bench/out/shots.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from bench.harness import OUT_DIR, BenchRun
from motionmatch.metrics import boundary_f1, f1_from_counts
from motionmatch.video import shots

VIDEO_DIR = OUT_DIR / "shots_videos"

RUNS = (  # (label, method, options): defaults first; the extra row says it is not a default
    ("content", "content", {}),
    ("content (threshold 15)", "content", {"threshold": 15.0}),
    ("adaptive", "adaptive", {}),
    ("transnetv2", "transnetv2", {}),
)
TIE_F1 = 0.02  # F1 differences below this are ties, broken by speed
QUICK = {"n_videos": 2, "duration_s": 12.0, "size": (96, 72), "min_segment_s": 1.5, "max_segment_s": 3.0}
FULL = {"n_videos": 4, "duration_s": 120.0, "size": (320, 240), "min_segment_s": 2.0, "max_segment_s": 20.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 tiny videos (a smoke test of the whole path)")
    parser.add_argument("--tolerance-s", type=float, default=0.5, help="a predicted cut matches a true one this close")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated videos")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--device", default="cpu", help="TransNetV2 device (cpu, cuda, auto)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/shots.json)")
    return parser.parse_args(argv)


def generate(settings: dict, seed: int, fps: float) -> Path:
    """The generated videos for ``settings`` (cached: reused when their ground truth exists)."""
    from motionmatch.data import generate_long_videos

    width, height = settings["size"]
    folder = VIDEO_DIR / (f"{settings['n_videos']}x{settings['duration_s']:g}s_{width}x{height}_{fps:g}fps_"
                          f"seg{settings['min_segment_s']:g}-{settings['max_segment_s']:g}_seed{seed}")
    if not (folder / "cuts.csv").is_file():
        generate_long_videos(folder, n_videos=settings["n_videos"], duration_s=settings["duration_s"], seed=seed,
                             fps=fps, size=(width, height), min_segment_s=settings["min_segment_s"],
                             max_segment_s=settings["max_segment_s"], progress=False)
    return folder


def read_truth(folder: Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per video: the hard-cut times, and the times where only the motion changes (no cut)."""
    cuts: dict[str, list[float]] = {}
    continuous: dict[str, list[float]] = {}
    with (folder / "ground_truth.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            cuts.setdefault(row["video"], [])
            continuous.setdefault(row["video"], [])
            if row["transition"] == "continuous":
                continuous[row["video"]].append(float(row["start_s"]))
    with (folder / "cuts.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            cuts[row["video"]].append(float(row["time_s"]))
    return cuts, continuous


def near(times: list[float], targets: list[float], tolerance_s: float) -> int:
    """How many of ``times`` lie within ``tolerance_s`` of some target."""
    return sum(any(abs(t - g) <= tolerance_s for g in targets) for t in times)


def measure(folder: Path, label: str, method: str, options: dict, tolerance_s: float,
            cuts: dict, continuous: dict) -> dict:
    """Run one method on every video: pooled precision/recall/F1, false cuts at motion changes, speed."""
    from motionmatch.video import probe_video

    matched = n_predicted = n_true = at_motion_change = 0
    wall = cpu = video_s = 0.0
    per_video = {}
    for name in sorted(cuts):
        path = folder / name
        video_s += probe_video(path).duration_s
        wall_0, cpu_0 = time.perf_counter(), time.process_time()
        found = shots.detect_shots(path, method, **options)
        wall += time.perf_counter() - wall_0
        cpu += time.process_time() - cpu_0
        predicted = [shot.start_s for shot in found[1:]]
        score = boundary_f1(predicted, cuts[name], tolerance_s)
        matched, n_predicted, n_true = (matched + score["matched"], n_predicted + score["n_predicted"],
                                        n_true + score["n_true"])
        false_at_change = near([t for t in predicted if not any(abs(t - c) <= tolerance_s for c in cuts[name])],
                               continuous[name], tolerance_s)
        at_motion_change += false_at_change
        per_video[name] = {"predicted": predicted, "true": cuts[name], **score}
        print(f"[shots] {label} {name}: F1 {score['f1']:.3f} ({score['matched']}/{score['n_true']} cuts, "
              f"{score['n_predicted']} predicted) in {time.perf_counter() - wall_0:.1f} s", file=sys.stderr, flush=True)
    pooled = f1_from_counts(matched, n_predicted, n_true)
    return {"label": label, "method": method, "options": shots.check_options(method, options), **pooled,
            "false_cuts_at_motion_changes": at_motion_change, "n_motion_changes": sum(map(len, continuous.values())),
            "video_s": video_s, "wall_s": wall, "cpu_s": cpu, "wall_s_per_video_hour": wall / video_s * 3600,
            "cpu_s_per_video_hour": cpu / video_s * 3600, "per_video": per_video}


def recommend(rows: list[dict]) -> dict:
    """The default-method choice: best pooled F1 among default-option rows; within TIE_F1 of it, the fastest."""
    defaults = [row for row in rows if row["label"] == row["method"]]
    best = max(row["f1"] for row in defaults)
    contenders = [row for row in defaults if row["f1"] >= best - TIE_F1]
    chosen = min(contenders, key=lambda row: row["wall_s_per_video_hour"])
    return {"method": chosen["method"], "f1": chosen["f1"], "best_f1": best,
            "rule": f"best pooled boundary F1 with default options; within {TIE_F1} F1 of the best, the fastest"}


COLUMNS = (  # (header, value of a row as text)
    ("method", lambda r: r["label"]),
    ("precision", lambda r: f"{r['precision']:.3f}"),
    ("recall", lambda r: f"{r['recall']:.3f}"),
    ("F1", lambda r: f"{r['f1']:.3f}"),
    ("false cuts at motion changes", lambda r: f"{r['false_cuts_at_motion_changes']} of {r['n_motion_changes']}"),
    ("s / video-hour (wall)", lambda r: f"{r['wall_s_per_video_hour']:.0f}"),
    ("CPU s / video-hour", lambda r: f"{r['cpu_s_per_video_hour']:.0f}"),
    ("× real time", lambda r: f"{3600 / r['wall_s_per_video_hour']:.1f}"),
)


def table(rows: list[dict]) -> str:
    """One markdown row per measured method."""
    cells = [[header for header, _ in COLUMNS], ["---"] * len(COLUMNS)]
    cells += [[text(row) for _, text in COLUMNS] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in cells)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a markdown table; write bench/out/shots.json; return the results."""
    args = parse_args(argv)
    run = BenchRun("shots", argv, quick=args.quick, out=args.out)
    settings = QUICK if args.quick else FULL
    folder = generate(settings, args.seed, args.fps)
    cuts, continuous = read_truth(folder)
    load_0 = time.perf_counter()
    shots._transnet_model(args.device)  # load the weights once, outside the timed runs
    load_s = time.perf_counter() - load_0
    rows = []
    for label, method, options in RUNS:
        if method == "transnetv2":
            options = {**options, "device": args.device}
        rows.append(measure(folder, label, method, options, args.tolerance_s, cuts, continuous))
    choice = recommend(rows)
    width, height = settings["size"]
    markdown = table(rows)
    n_cuts = sum(map(len, cuts.values()))
    summary = "\n".join([
        f"{settings['n_videos']} generated videos × {settings['duration_s']:g} s at {width}x{height}, {args.fps:g} fps "
        f"(seed {args.seed}): {n_cuts} hard cuts, {sum(map(len, continuous.values()))} cut-free motion changes; "
        f"{os.cpu_count()} CPUs, TransNetV2 on {args.device} (model load {load_s:.1f} s, not in the times). "
        f"F1 at a tolerance of {args.tolerance_s:g} s, pooled over the videos.", "",
        markdown, "",
        f"**Choice: `{choice['method']}`** ({choice['rule']}); `motionmatch.video.shots.DEFAULT_METHOD` is "
        f"`{shots.DEFAULT_METHOD}`{' (agrees)' if choice['method'] == shots.DEFAULT_METHOD else ' (DISAGREES)'}"
        + (" — quick mode has too few cuts to choose by; the default rests on the full run." if args.quick else ".")])
    run.target("default", choice["f1"], "F1", "shots.DEFAULT_METHOD is the measured choice",
               passed=choice["method"] == shots.DEFAULT_METHOD,
               detail=f"measured choice {choice['method']}; the default is {shots.DEFAULT_METHOD}")
    return run.finish(summary, settings={**settings, "fps": args.fps, "seed": args.seed}, tolerance_s=args.tolerance_s,
                      device=args.device, transnet_load_s=load_s, rows=rows, recommended=choice,
                      default_method=shots.DEFAULT_METHOD, table_markdown=markdown)


if __name__ == "__main__":
    main()
