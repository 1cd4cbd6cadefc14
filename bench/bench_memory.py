"""Memory benchmark: does extraction stream, i.e. stay flat as the folder grows?

The same 640x360 video (generated locally, 120 frames) is copied into folders of growing size. For
each folder size, in a fresh subprocess, two ways of embedding it are measured with the weight-free
``FlowEncoder`` (the demo's encoder; the model is not what this measures):

* **pipeline**: ``motionmatch.extract.local.extract_embeddings(..., workers=1)``, the production path:
  one spawned decode worker, at most ``prefetch`` decoded videos in flight, one parquet part written
  per video;
* **pipeline, fixed mmap threshold**: the same, with ``MALLOC_MMAP_THRESHOLD_=131072`` in the
  environment, so glibc returns every freed frame buffer to the OS at once. With glibc's default
  (a threshold that adapts upwards), the heap of both processes grows by a bounded amount (tens of
  MiB) over the first few dozen videos and then stops: fragmentation, not a leak. This row shows it;
* **hold-all** (the contrast, what a notebook loop often does): decode every clip of the folder into
  one list, then encode the list. Its peak must grow with the folder; if it did not, this benchmark
  could not see a leak either.

Peak memory is the process's ``VmHWM`` (its own high-water mark of resident memory) plus, for the
pipeline, the decode worker's peak (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the pool is shut
down). The results are the growth in MiB per added video, over the whole range and over the last
step (between the two largest folders), and the ratio of the largest folder's peak to the smallest
one's. Target: over the last step, the pipeline grows by less than 1% of one video's decoded clips
per added video (memory has stopped growing), while hold-all grows by about one video's decoded
clips per video (so the measurement can see growth).

Usage::

    python -m bench.bench_memory --quick   # folders of 2, 8, 16 videos, < 1 minute on 2 cores (not judged: the
                                           # heap still settles over the first few dozen videos, +2.5 MiB/video)
    python -m bench.bench_memory           # folders of 4, 48, 96 videos, < 4 minutes

Prints a markdown table and writes ``bench/out/memory.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import BenchRun, child_main, children_peak_mib, own_peak_mib, run_child, texture_video

VIDEO_SIZE = (640, 360)
VIDEO_FRAMES = 120
CLIP_SPEC = dict(frames_per_clip=16, frame_stride=2, clips_per_video=4)
LAST_STEP_TOLERANCE = 0.01  # last-step growth per added video, as a share of one video's decoded clips
MODES = {"pipeline": {}, "pipeline, MALLOC_MMAP_THRESHOLD_=131072": {"MALLOC_MMAP_THRESHOLD_": "131072"},
         "hold-all": {}}
CHILD_TIMEOUT_S = 600


def _child(spec: dict) -> dict:
    """Runs in a subprocess: embed one folder one way; report peaks and clip counts."""
    import numpy as np

    from motionmatch.data import discover_videos
    from motionmatch.encoders import build_encoder
    from motionmatch.extract import extract_embeddings
    from motionmatch.video import ClipSpec, sample_clips

    encoder = build_encoder("flow")
    clip_spec = ClipSpec(**spec["clip_spec"])
    manifest, failures = discover_videos(spec["folder"])
    baseline = own_peak_mib()
    started = time.perf_counter()
    if spec["mode"].startswith("pipeline"):
        summary = extract_embeddings(manifest, encoder, spec["out"], clip_spec=clip_spec, batch_size=8,
                                     workers=1, overwrite=True, progress=False)
        clips = summary.clips_embedded
        if summary.failed or failures:
            raise RuntimeError(f"extraction failed: {summary.failures[:3]}")
    else:
        decoded = [clip for path in manifest["path"] for clip in sample_clips(path, clip_spec)]
        vectors = encoder.encode([clip.frames for clip in decoded], batch_size=8, progress=False)
        clips = int(np.asarray(vectors).shape[0])
    seconds = time.perf_counter() - started
    worker_peak = children_peak_mib() if spec["mode"].startswith("pipeline") else 0.0
    return {"videos": len(manifest), "clips": int(clips), "seconds": seconds, "baseline_mib": baseline,
            "main_peak_mib": own_peak_mib(), "worker_peak_mib": worker_peak}


def _run_child(spec: dict) -> dict:
    return run_child("bench.bench_memory", spec, CHILD_TIMEOUT_S, env=MODES[spec["mode"]],
                     what=f"memory child {spec['mode']} x {spec['videos']}")


def decoded_mib_per_video() -> float:
    """Bytes of one video's decoded clips (uint8 RGB), in MiB: what hold-all must add per video."""
    width, height = VIDEO_SIZE
    return CLIP_SPEC["clips_per_video"] * CLIP_SPEC["frames_per_clip"] * width * height * 3 / 2**20


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    import numpy as np

    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0]) if len(xs) > 1 else float("nan")


def markdown(rows: list[dict]) -> str:
    lines = ["| path | videos | clips | seconds | main peak MiB | worker peak MiB | total peak MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['mode']} | {r['videos']} | {r['clips']} | {r['seconds']:.1f} | {r['main_peak_mib']:.0f} | "
              f"{r['worker_peak_mib']:.0f} | {r['total_peak_mib']:.0f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="folders of 2, 8 and 16 videos")
    parser.add_argument("--sizes", default=None, help="comma-separated folder sizes (default 4,48,96; quick 2,8,16)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/memory.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, _child)

    sizes = [int(s) for s in (args.sizes or ("2,8,16" if args.quick else "4,48,96")).split(",")]
    if sorted(set(sizes)) != sizes or sizes[0] < 1 or len(sizes) < 2:
        parser.error("--sizes must be at least two increasing positive integers")
    run = BenchRun("memory", argv, quick=args.quick, out=args.out)
    source = texture_video("360p", VIDEO_SIZE, VIDEO_FRAMES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        for count in sizes:
            folder = Path(tmp) / f"videos_{count}"
            folder.mkdir()
            for index in range(count):
                shutil.copyfile(source, folder / f"video_{index:04d}.mp4")
            for index, mode in enumerate(MODES):
                row = _run_child({"mode": mode, "folder": str(folder), "out": str(Path(tmp) / f"out_{index}_{count}"),
                                  "clip_spec": CLIP_SPEC, "videos": count})
                row["mode"] = mode
                row["total_peak_mib"] = row["main_peak_mib"] + row["worker_peak_mib"]
                rows.append(row)
                print(f"[memory] {mode:40s} {count:3d} videos: peak {row['total_peak_mib']:.0f} MiB "
                      f"({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
            shutil.rmtree(folder)

    growth = {}
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        growth[mode] = {"mib_per_video": slope([r["videos"] for r in mine], [r["total_peak_mib"] for r in mine]),
                        "last_step_mib_per_video": (mine[-1]["total_peak_mib"] - mine[-2]["total_peak_mib"])
                        / (mine[-1]["videos"] - mine[-2]["videos"]),
                        "largest_over_smallest": mine[-1]["total_peak_mib"] / mine[0]["total_peak_mib"]}
    expected = decoded_mib_per_video()
    allowed = LAST_STEP_TOLERANCE * expected
    flat = growth["pipeline"]["last_step_mib_per_video"] <= allowed
    sees_growth = growth["hold-all"]["mib_per_video"] >= 0.5 * expected
    last_step = growth["pipeline"]["last_step_mib_per_video"]
    run.target("flat_memory", last_step, "MiB per added video",
               f"pipeline peak grows < {allowed:.2f} MiB per added video over the last step of the folder sizes "
               f"(1% of one video's decoded clips; full run: 48 to 96 videos)", passed=bool(flat),
               detail=f"{sizes[-2]} to {sizes[-1]} videos; {sizes[-1]} vs {sizes[0]} videos: "
                      f"{growth['pipeline']['largest_over_smallest']:.3f}x the peak")
    summary = "\n".join([
        f"Folders of {', '.join(map(str, sizes))} copies of one {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, {VIDEO_FRAMES}-frame "
        f"H.264 video; clips {CLIP_SPEC} ({expected:.0f} MiB of decoded frames per video); FlowEncoder; each "
        f"measurement in a fresh process.",
        "\n" + markdown(rows) + "\n",
        *[f"- {mode}: {g['mib_per_video']:+.2f} MiB per added video over the whole range, "
          f"{g['last_step_mib_per_video']:+.2f} over the last step ({sizes[-2]} → {sizes[-1]}); peak at {sizes[-1]} / "
          f"peak at {sizes[0]} = {g['largest_over_smallest']:.3f}x" for mode, g in growth.items()
          if mode != "hold-all"],
        f"- hold-all (contrast): {growth['hold-all']['mib_per_video']:+.2f} MiB per added video "
        f"(decoded clips are {expected:.0f} MiB per video); largest/smallest "
        f"{growth['hold-all']['largest_over_smallest']:.2f}x — "
        + ("the measurement sees growth where there is some." if sees_growth else
           "WARNING: the contrast did not grow as expected, so this measurement may be blind."),
    ])
    return run.finish(summary, sizes=sizes, clip_spec=CLIP_SPEC, video_size=VIDEO_SIZE, rows=rows, growth=growth,
                      decoded_mib_per_video=expected, contrast_sees_growth=bool(sees_growth))


if __name__ == "__main__":
    main()
