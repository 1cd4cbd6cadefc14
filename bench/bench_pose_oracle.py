"""BlazePose oracle benchmark: our pipeline vs MediaPipe's own ``Pose`` on the same real frames, side by side.

The frames are the first ``--frames`` frames of each camera of Pose2Sim's demo (one person filmed by 4 cameras,
1088x1920 portrait; the ``pose2sim`` wheel on PyPI ships the videos: ``motionmatch.data.pose2sim`` fetches it once
into the cache). Each video is decoded once with ``motionmatch.video.read_frames``; the same RGB frames go to

* ours: ``motionmatch.encoders.blazepose.BlazePose(num_threads=1)``, tracking through the video;
* the oracle: ``mediapipe.solutions.pose.Pose(static_image_mode=False, model_complexity=1)`` from mediapipe 0.10.21,
  run in a separate interpreter (``--oracle-python``, default ``/work/mpvenv/bin/python``: mediapipe cannot live in
  this project's venv). Skipped cleanly (exit 0, with a message) when that interpreter or its mediapipe is absent.

Both run pinned to one CPU core, one after the other in this run. Reported per frame and summarised: detection
agreement (both find the person, or neither), image-landmark error in pixels and as a fraction of the torso
(oracle's mid-shoulder to mid-hip distance), world-landmark error in cm, visibility difference, and ms per frame
(ours: end to end, frames that ran the detector, tracked frames, and the detector alone).

Usage::

    python -m bench.bench_pose_oracle            # 60 frames x 4 cameras of Demo_SinglePerson
    python -m bench.bench_pose_oracle --quick    # 10 frames of one camera
    python -m bench.bench_pose_oracle --demo MultiPerson

Prints a markdown table and writes ``bench/out/pose_oracle.json``. ``main(argv) -> dict``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
if str(PROJECT_ROOT) not in sys.path:  # `python bench/bench_pose_oracle.py` from anywhere
    sys.path.insert(0, str(PROJECT_ROOT))

from motionmatch import config  # noqa: E402
from motionmatch.data.pose2sim import POSE2SIM_VERSION, SampleUnavailableError  # noqa: E402

DEFAULT_ORACLE_PYTHON = "/work/mpvenv/bin/python"
DEMOS = ("SinglePerson", "MultiPerson")
TARGET_MEDIAN_TORSO_FRACTION = 0.02  # median image-landmark error under 2 % of the torso
TARGET_AGREEMENT = 0.95  # both find the person, or neither, on more than 95 % of the frames
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24

# Run by the oracle interpreter: argv = frames.npy, out.npz, cpu core. Landmarks in pixels like ours.
ORACLE_SOURCE = r"""
import os, sys, time
import numpy as np
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {int(sys.argv[3])})
import mediapipe as mp
frames = np.load(sys.argv[1], mmap_mode="r")
n, height, width = frames.shape[:3]
image = np.full((n, 33, 3), np.nan, np.float32)
world = np.full((n, 33, 3), np.nan, np.float32)
visibility = np.full((n, 33), np.nan, np.float32)
ms = np.zeros(n)
with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
    pose.process(np.zeros((64, 64, 3), np.uint8))  # first-call costs outside the timing, as for ours
    for i in range(n):
        frame = np.ascontiguousarray(frames[i])
        start = time.perf_counter()
        result = pose.process(frame)
        ms[i] = (time.perf_counter() - start) * 1000
        if result.pose_landmarks:
            image[i] = [(p.x * width, p.y * height, p.z * width) for p in result.pose_landmarks.landmark]
            visibility[i] = [p.visibility for p in result.pose_landmarks.landmark]
            world[i] = [(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark]
np.savez(sys.argv[2], image=image, world=world, visibility=visibility, ms=ms, version=mp.__version__)
"""


def sample_videos(print_fn=print) -> Path:
    """The ``Pose2Sim`` folder of the pose2sim wheel's demos (``Demo_SinglePerson/videos/cam01.mp4`` ...).

    The wheel comes from :func:`motionmatch.data.pose2sim.fetch_pose2sim_wheel` (fetched once, sha256-checked); its
    demo videos are unpacked once next to it. SampleUnavailableError when it cannot be fetched.
    """
    from motionmatch.data.pose2sim import fetch_pose2sim_wheel

    root = Path(config.setting("cache_dir")).expanduser() / f"pose2sim-{POSE2SIM_VERSION}-demo-videos"
    if not (root / ".complete").exists():
        with zipfile.ZipFile(fetch_pose2sim_wheel(print_fn)) as archive:
            members = [name for name in archive.namelist() if name.endswith(".mp4")
                       and any(name.startswith(f"Pose2Sim/Demo_{demo}/videos/") for demo in DEMOS)]
            archive.extractall(root, members)
        (root / ".complete").write_text(f"pose2sim {POSE2SIM_VERSION} demo videos\n")
    return root / "Pose2Sim"


def demo_videos(demo: str, print_fn=print) -> list[Path]:
    """The camera videos of one Pose2Sim demo (``SinglePerson`` or ``MultiPerson``), in camera order."""
    return sorted((sample_videos(print_fn) / f"Demo_{demo}" / "videos").glob("cam*.mp4"))


def oracle_problem(python: str) -> str:
    """Why ``python`` cannot serve as the oracle ("" when it can)."""
    if not Path(python).is_file():
        return f"no oracle interpreter at {python}"
    done = subprocess.run([python, "-c", "import mediapipe; print(mediapipe.__version__)"], capture_output=True,
                          text=True, timeout=120)
    return "" if done.returncode == 0 else f"{python} cannot import mediapipe ({done.stderr.strip()[-200:]})"


def run_ours(frames: np.ndarray, threads: int) -> dict:
    """Our BlazePose on ``frames`` (tracking), then the detector alone on each frame; arrays and timings."""
    from motionmatch.encoders.blazepose import BlazePose

    pose = BlazePose(num_threads=threads)
    pose(np.zeros((64, 64, 3), np.uint8))  # first-call costs (XNNPACK set-up) outside the timing
    pose.reset()
    results, ms = [], []
    for frame in frames:
        start = time.perf_counter()
        results.append(pose(frame))
        ms.append((time.perf_counter() - start) * 1000)
    detector_ms = []
    for frame in frames[: min(len(frames), 20)]:
        start = time.perf_counter()
        pose.detect(frame)
        detector_ms.append((time.perf_counter() - start) * 1000)
    return {"found": np.array([r.found for r in results]), "detected": np.array([r.detected for r in results]),
            "image": np.stack([r.image_landmarks for r in results]),
            "world": np.stack([r.world_landmarks for r in results]),
            "visibility": np.stack([r.visibility for r in results]), "ms": np.array(ms),
            "detector_ms": np.array(detector_ms)}


def run_oracle(python: str, frames: np.ndarray, core: int) -> dict:
    """MediaPipe's Pose on ``frames`` in the oracle interpreter (pinned to ``core``); arrays and timings."""
    with tempfile.TemporaryDirectory(prefix="motionmatch-pose-oracle-") as folder:
        frames_path, out_path = Path(folder) / "frames.npy", Path(folder) / "oracle.npz"
        np.save(frames_path, frames)
        done = subprocess.run([python, "-c", ORACLE_SOURCE, str(frames_path), str(out_path), str(core)],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"the oracle failed (exit {done.returncode}): {done.stderr[-2000:]}")
        with np.load(out_path) as data:
            oracle = {key: data[key] for key in data.files}
    oracle["found"] = np.isfinite(oracle["image"]).all(axis=(1, 2))
    return oracle


def compare(ours: dict, oracle: dict) -> list[dict]:
    """One row per frame: who found the person and, where both did, the errors."""
    rows = []
    for i in range(len(ours["ms"])):
        row = {"frame": i, "ours_found": bool(ours["found"][i]), "oracle_found": bool(oracle["found"][i]),
               "ours_detected": bool(ours["detected"][i]), "ms_ours": float(ours["ms"][i]),
               "ms_oracle": float(oracle["ms"][i])}
        if row["ours_found"] and row["oracle_found"]:
            truth = oracle["image"][i]
            error_px = np.linalg.norm(ours["image"][i, :, :2] - truth[:, :2], axis=1)
            shoulders = (truth[LEFT_SHOULDER, :2] + truth[RIGHT_SHOULDER, :2]) / 2
            hips = (truth[LEFT_HIP, :2] + truth[RIGHT_HIP, :2]) / 2
            torso = float(np.linalg.norm(shoulders - hips))
            world_cm = np.linalg.norm(ours["world"][i] - oracle["world"][i], axis=1) * 100
            row.update(error_px_mean=float(error_px.mean()), error_px_max=float(error_px.max()), torso_px=torso,
                       error_torso=float(error_px.mean() / torso), world_cm=float(world_cm.mean()),
                       visibility_diff=float(np.abs(ours["visibility"][i] - oracle["visibility"][i]).mean()))
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Agreement and error statistics over ``rows`` (frames of one video or all)."""
    both = [r for r in rows if r["ours_found"] and r["oracle_found"]]
    tracked = [r["ms_ours"] for r in rows if not r["ours_detected"]]
    detected = [r["ms_ours"] for r in rows if r["ours_detected"]]

    def stat(key: str, how) -> float | None:
        return float(how([r[key] for r in both])) if both else None

    return {"frames": len(rows), "agreement": float(np.mean([r["ours_found"] == r["oracle_found"] for r in rows])),
            "ours_found": sum(r["ours_found"] for r in rows), "oracle_found": sum(r["oracle_found"] for r in rows),
            "both_found": len(both), "error_px_mean": stat("error_px_mean", np.mean),
            "error_px_median": stat("error_px_mean", np.median), "error_px_max": stat("error_px_max", np.max),
            "error_torso_mean": stat("error_torso", np.mean), "error_torso_median": stat("error_torso", np.median),
            "world_cm_mean": stat("world_cm", np.mean), "world_cm_median": stat("world_cm", np.median),
            "visibility_diff_mean": stat("visibility_diff", np.mean),
            "ms_ours": float(np.mean([r["ms_ours"] for r in rows])),
            "ms_ours_detected_frames": float(np.mean(detected)) if detected else None,
            "ms_ours_tracked_frames": float(np.mean(tracked)) if tracked else None,
            "ms_oracle": float(np.mean([r["ms_oracle"] for r in rows])),
            "detector_runs": sum(r["ours_detected"] for r in rows)}


COLUMNS = (("video", "{}"), ("frames", "{}"), ("agreement", "{:.1%}"), ("both_found", "{}"),
           ("error_px_mean", "{:.2f}"), ("error_px_median", "{:.2f}"), ("error_torso_median", "{:.2%}"),
           ("world_cm_mean", "{:.2f}"), ("ms_ours", "{:.1f}"), ("ms_oracle", "{:.1f}"), ("detector_runs", "{}"))


def table(summaries: dict[str, dict]) -> str:
    header = ["video", "frames", "agreement", "both found", "err px mean", "err px median", "err / torso median",
              "world cm mean", "ms ours", "ms oracle", "detector runs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, summary in summaries.items():
        cells = [fmt.format(name if key == "video" else summary[key]) if (key == "video" or summary[key] is not None)
                 else "—" for key, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 frames of the first camera")
    parser.add_argument("--frames", type=int, default=60, help="first frames of each camera video")
    parser.add_argument("--demo", choices=DEMOS, default="SinglePerson", help="which Pose2Sim demo")
    parser.add_argument("--oracle-python", default=DEFAULT_ORACLE_PYTHON, help="an interpreter with mediapipe 0.10.21")
    parser.add_argument("--core", type=int, default=None, help="CPU core both run on (default: the first allowed)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "pose_oracle.json")
    return parser.parse_args(argv)


TARGETS = (("landmarks", f"median image-landmark error < {TARGET_MEDIAN_TORSO_FRACTION:.0%} of the torso"),
           ("agreement", f"detection agreement > {TARGET_AGREEMENT:.0%}"))


def _skip(run, reason: str) -> dict:
    """Both targets not measured, with the reason (no oracle interpreter, no sample)."""
    for name, target in TARGETS:
        run.not_measured(name, target, reason)
    return run.finish(f"BlazePose oracle benchmark skipped: {reason}", skipped=reason)


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison; print a markdown table; write bench/out/pose_oracle.json; return the results."""
    args = parse_args(argv)
    from bench.harness import BenchRun

    run = BenchRun("pose_oracle", argv, quick=args.quick, out=args.out)
    problem = oracle_problem(args.oracle_python)
    if problem:
        return _skip(run, f"{problem}; create it with `python3 -m venv /work/mpvenv && /work/mpvenv/bin/pip install "
                          f"mediapipe==0.10.21` or pass --oracle-python")
    try:
        videos = demo_videos(args.demo)
    except SampleUnavailableError as error:
        return _skip(run, str(error))
    videos, n_frames = (videos[:1], 10) if args.quick else (videos, args.frames)
    pinning = hasattr(os, "sched_setaffinity")  # Linux; elsewhere both run unpinned
    allowed = os.sched_getaffinity(0) if pinning else set()
    core = args.core if args.core is not None else min(allowed or {0})
    from motionmatch.video import read_frames

    rows, summaries, oracle_version = [], {}, ""
    try:
        if pinning:
            os.sched_setaffinity(0, {core})  # ours on one core, as the oracle (its child pins itself)
        for video in videos:
            frames = read_frames(video, list(range(n_frames)))
            ours = run_ours(frames, threads=1)
            oracle = run_oracle(args.oracle_python, frames, core)
            oracle_version = str(oracle["version"])
            video_rows = [{"video": video.name, **row} for row in compare(ours, oracle)]
            rows += video_rows
            summaries[video.name] = {**summarise(video_rows), "detector_alone_ms": float(ours["detector_ms"].mean())}
    finally:
        if pinning:
            os.sched_setaffinity(0, allowed)
    overall = summarise(rows)
    overall["detector_alone_ms"] = float(np.mean([s["detector_alone_ms"] for s in summaries.values()]))
    summaries["all"] = overall
    passed_error = overall["error_torso_median"] is not None \
        and overall["error_torso_median"] < TARGET_MEDIAN_TORSO_FRACTION
    markdown = table(summaries)
    timing = (f"ms per frame on one core (num_threads=1): ours {overall['ms_ours']:.1f} end to end "
              f"({overall['ms_ours_detected_frames'] or float('nan'):.1f} on frames that ran the detector, "
              f"{overall['ms_ours_tracked_frames'] or float('nan'):.1f} tracked), detector alone "
              f"{overall['detector_alone_ms']:.1f}; MediaPipe {overall['ms_oracle']:.1f}.")
    summary = "\n".join([
        f"Pose2Sim Demo_{args.demo}: first {n_frames} frames of {len(videos)} camera(s); ours vs mediapipe "
        f"{oracle_version} `Pose(static_image_mode=False, model_complexity=1)` on the same decoded frames. "
        f"Errors over frames where both found the person (image: mean over the 33 landmarks of the x, y distance; "
        f"torso: oracle's mid-shoulder to mid-hip).", "", markdown, "", timing])
    both = bool(overall["both_found"])
    run.target("landmarks", 100 * overall["error_torso_median"] if both else None, "%", TARGETS[0][1],
               passed=passed_error if both else None,
               detail="of the oracle's mid-shoulder to mid-hip distance, frames where both found the person"
               if both else "neither found the person on the same frame")
    run.target("agreement", 100 * overall["agreement"], "%", TARGETS[1][1],
               passed=bool(overall["agreement"] > TARGET_AGREEMENT),
               detail=f"{len(rows)} frames of {len(videos)} camera(s)")
    return run.finish(summary, demo=args.demo, frames_per_video=n_frames, videos=[video.name for video in videos],
                      oracle_python=args.oracle_python, oracle_version=oracle_version, summaries=summaries,
                      rows=rows, table_markdown=markdown, core=core)


if __name__ == "__main__":
    main()
