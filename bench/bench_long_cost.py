"""Cost of indexing long videos with dense windows: linear in duration, flat peak memory, seconds per stage.

Every extraction is the CLI's ``motionmatch extract SOURCE --stride-s`` with its defaults
(``extract_embeddings(..., window_spec=WindowSpec())``: a window of 16 frames every 4th frame every
0.5 s, TransNetV2 shot detection, 32 windows per saved part, batch 8) and the weight-free
FlowEncoder, each in a **fresh subprocess** (so its peak RSS, ``VmHWM``, is its own). The
TransNetV2 weights are loaded before the timed call (their load time is reported apart): they are
a per-process cost, not a per-minute one. The videos are generated into a temporary folder and
deleted afterwards. Measured side by side in one run:

* **Linear in duration**: generated long videos (``long_synthetic.generate_long_videos``: 2-20 s
  motion segments with hard cuts, 160x120, 24 fps) of 12 to 96 s; a least-squares line of CPU
  seconds (all threads of the process; wall clock on this shared machine swings with the other
  jobs, so it is shown but not judged) over minutes (``scipy.stats.linregress``). Target: R² >= 0.99
  and every step's marginal cost (extra seconds per extra minute between consecutive durations)
  within ±25% of the fitted slope, i.e. no superlinear term.
* **Flat memory at 720p**: peak RSS of a long 1280x720 video against a short one (a gradient with a
  moving block, a hard cut every 20 s). A 24 fps hour of 720p is 86,400 frames: about an hour on 2 CPU
  cores (TransNetV2 alone ~45 min), past any bench budget. So the pair is 21 s (250 frames: TransNetV2's
  batches of 4 x 100 frames are full, 32 windows: one saved part) against 150 s (1,800 frames, 7.2x) at
  **12 fps**, and the target is judged on that ratio: within +10%. Caveat, measured: the pipeline's
  read-ahead (``clips.prefetched_clips``, up to 2 x batch = 16 decoded windows queued; 44 MiB each at
  720p) fills only when the encoder falls behind the decoder, so how full it got, and with it the
  peak, varies from run to run and is more likely to reach its bound in a longer run. The bound does
  not grow with duration; a run's peak can still differ by up to ~16 x 44 MiB. (A pair at a very low
  frame rate does not work: its short video is a handful of windows, and the ratio then shows the
  read-ahead and the batches filling up, not growth with duration.)
* **Seconds per video-hour by stage** (on this machine's cores): the pipeline records only its total
  time, so the child wraps the pipeline's own stage functions with timers (the real functions run):
  ``probe`` (timestamps, fingerprint), ``shots`` (``detect_shots``, TransNetV2), ``decode`` (the
  ``iter_window_clips`` stream, consumed by a read-ahead thread) and ``encode`` (``encoder.encode``).
  Decode and encode overlap, so their rows add up to more than their phase (total - probe - shots),
  which is shown too; their CPU is the calling thread's (``time.thread_time``: PyAV's and OpenCV's own
  worker threads are not in it), probe and shot detection run alone and count the whole process. The
  content detector (PySceneDetect) is timed on the same files after the extraction, for the
  ``--shots content`` total. The 720p pair's per-frame and per-window costs give an extrapolated
  720p, 24 fps hour.
* **The frame store's cost per video-hour** (issue 19: the fine stage of a segment search reads every frame's
  24 x 24 thumbnail from ``<collection>__frames``): the child also times, on the real decoded frames of the same
  extraction, ``fingerprint.thumbnails`` (called by ``iter_window_clips`` in decode's read-ahead thread, so it is
  a part of the decode row; its CPU is that thread's) and ``fingerprint.pack`` (zlib, where the parts are
  written), and afterwards writes the run's frame store into a new Milvus Lite file as ``motionmatch index``
  does (``index.sync_frames``: ``frame_rows`` and the upsert; wall and process CPU). Bytes: the packed
  thumbnails per frame (x 24 fps x 3,600), and the Lite file's growth per video-hour (flushed, background work
  waited for). Recorded, not judged. The 720p pair's thumbnails per frame give a 720p, 24 fps hour.

Usage::

    python -m bench.bench_long_cost --quick   # tiny sizes: the whole path in under a minute (targets not judged)
    python -m bench.bench_long_cost           # 12-96 s at 160x120, 24 fps; 21 and 150 s at 720p, 12 fps; ~6 min

Prints markdown and writes ``bench/out/long_cost.json``. ``main(argv) -> dict`` for ``python -m bench``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import BenchRun, StageTimers, child_main, own_peak_mib, run_child

QUICK = {"linear": {"seconds": (3, 6, 12), "size": (64, 48), "fps": 24.0},
         "memory": {"seconds": (8, 24), "size": (160, 90), "fps": 12.0}}
FULL = {"linear": {"seconds": (12, 24, 48, 96), "size": (160, 120), "fps": 24.0},
        "memory": {"seconds": (250 / 12, 150), "size": (1280, 720), "fps": 12.0}}
R2_MIN = 0.99  # linear fit of CPU seconds over minutes
STEP_TOLERANCE = 0.25  # each step's marginal s/min within this share of the fitted slope
RSS_MAX_RATIO = 1.10  # long-video peak RSS / short-video peak RSS
REAL_FPS = 24.0  # the frame rate the 720p hour is extrapolated to
CUT_EVERY_S = 20.0  # hard cuts of the memory-pair videos
STAGES = ("probe", "shots", "decode", "encode")
FRAME_STAGES = ("thumbnails", "pack")  # inside decode (the read-ahead thread) and the part writer
STAGE_CLOCKS = {"probe": time.process_time, "shots": time.process_time,  # run alone: the whole process
                "decode": time.thread_time, "encode": time.thread_time,  # overlap: the calling thread only
                "thumbnails": time.thread_time, "pack": time.thread_time}
CHILD_TIMEOUT_S = 1200


# ----------------------------------------------------------------------------- videos
def _pair_frames(n_frames: int, width: int, height: int, shot_frames: int, seed: int):
    """Frames of a memory-pair video: a colour gradient with a moving inverted block, new colours at each cut."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ramp = (np.arange(width, dtype=np.float32) / max(1, width - 1))[None, :, None]
    side = max(4, height // 8)
    for index in range(n_frames):
        if index % shot_frames == 0:
            low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            background = np.broadcast_to(low * (1 - ramp) + high * ramp, (height, width, 3)).astype(np.uint8)
            x, y, vx, vy = rng.uniform(0, width - side), rng.uniform(0, height - side), *rng.uniform(-12, 12, 2)
        frame = background.copy()
        step = index % shot_frames
        left = int(abs((x + vx * step) % (2 * (width - side)) - (width - side)))
        top = int(abs((y + vy * step) % (2 * (height - side)) - (height - side)))
        frame[top:top + side, left:left + side] = 255 - frame[top:top + side, left:left + side]
        yield frame


def make_video(folder: Path, seconds: float, size: tuple[int, int], fps: float, kind: str, seed: int) -> Path:
    """One generated video in its own folder (the extraction source); returns the video's path."""
    from motionmatch.data.long_synthetic import generate_long_videos
    from motionmatch.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "linear":
        generate_long_videos(folder, n_videos=1, duration_s=seconds, seed=seed, fps=fps, size=size, progress=False)
        return folder / "long_000.mp4"
    n_frames = int(round(seconds * fps))
    frames = _pair_frames(n_frames, size[0], size[1], max(1, int(round(CUT_EVERY_S * fps))), seed)
    return write_video(folder / "pair.mp4", frames, fps, preset="ultrafast")


# ----------------------------------------------------------------------------- the child (one extraction)
def _child(spec: dict) -> dict:
    """Runs in a fresh subprocess: the CLI's dense extraction of one video, timed by stage; then the content detector."""
    import motionmatch.extract.local as local
    import motionmatch.extract.parts as parts
    import motionmatch.video.fingerprint as fingerprint
    from motionmatch.data import load_source
    from motionmatch.encoders import build_encoder
    from motionmatch.video import WindowSpec, detect_shots, probe_video
    from motionmatch.video import shots

    load_0 = time.perf_counter()
    shots._transnet_model("auto")  # noqa: SLF001 - detect_shots' default device; loaded once per process, reported apart
    load_s = time.perf_counter() - load_0
    timers = StageTimers(STAGE_CLOCKS)
    # the pipeline's own stage functions, where extraction looks them up: plan (parts), stream and fingerprint (local)
    timers.patch(parts, "detect_shots", "shots")
    timers.patch(parts, "open_with_timestamps", "probe")
    timers.patch(local, "open_video", "probe")  # the time estimate's duration probe
    timers.patch(local, "fingerprint_file", "probe")
    timers.patch(local, "iter_window_clips", "decode", iterator=True)
    timers.patch(fingerprint, "thumbnails", "thumbnails")  # looked up by iter_window_clips at each call
    timers.patch(parts, "pack", "pack")
    encoder = build_encoder("flow")
    encoder.encode = timers.wrap("encode", encoder.encode)
    manifest, failures = load_source(spec["folder"])  # as `motionmatch extract` does
    wall_0, cpu_0 = time.perf_counter(), time.process_time()
    summary = local.extract_embeddings(manifest, encoder, spec["out"], window_spec=WindowSpec(), progress=False,
                                       print_fn=lambda *_args, **_kw: None)
    wall, cpu = time.perf_counter() - wall_0, time.process_time() - cpu_0
    peak = own_peak_mib()
    if failures or summary.failed or summary.embedded != 1:
        raise RuntimeError(f"extraction of {spec['folder']} failed: {[f for f in summary.failures if f.stage != 'window']}")
    video = manifest["path"].iloc[0]
    info = probe_video(video)
    wall_c, cpu_c = time.perf_counter(), time.process_time()
    content_shots = detect_shots(video, "content")
    content = {"wall": time.perf_counter() - wall_c, "cpu": time.process_time() - cpu_c, "shots": len(content_shots)}
    frame_store = _write_frame_store(spec["out"])
    return {"minutes": info.duration_s / 60, "frames": info.num_frames, "fps": info.fps,
            "size": [info.width, info.height], "windows": summary.clips_embedded,
            "padded_notes": sum(f.stage == "window" for f in summary.failures), "wall_s": wall, "cpu_s": cpu,
            "stage_wall_s": timers.wall, "stage_cpu_s": timers.cpu, "content": content,
            "transnet_load_s": load_s, "peak_rss_mib": peak, "frame_store": frame_store}


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def _write_frame_store(embeddings_dir: str) -> dict:
    """The extraction's frame store written as ``motionmatch index`` writes it (``index.sync_frames``) into a new
    Milvus Lite file beside the run: seconds, packed bytes, the file's growth on disk."""
    from bench.harness import lite_wait_for_background_work
    from motionmatch.extract.run import load_run
    from motionmatch.index import MotionStore
    from motionmatch.index.sync import sync_frames

    table = load_run(embeddings_dir).table
    uri = Path(embeddings_dir).parent / "frames.db"
    with MotionStore(str(uri), "long_cost") as store:
        before = _disk_bytes(uri)
        wall_0, cpu_0 = time.perf_counter(), time.process_time()
        summary = sync_frames(table, store)
        wall, cpu = time.perf_counter() - wall_0, time.process_time() - cpu_0
        frames = store.frame_store()
        lite_wait_for_background_work(frames.client, frames.uri, frames.collection)
        growth = _disk_bytes(uri) - before
    packed = [len(blob) for blob in table["frame_thumbs"]]
    return {"blocks": summary.rows_after, "frames": int(sum(len(t) for t in table["frame_times"])),
            "packed_bytes": int(sum(packed)), "sync_wall_s": wall, "sync_cpu_s": cpu, "disk_bytes": growth}


def _run_child(spec: dict) -> dict:
    return run_child("bench.bench_long_cost", spec, CHILD_TIMEOUT_S, what=f"long_cost child for {spec['folder']}")


# ----------------------------------------------------------------------------- analysis
def linear_fit(minutes: list[float], values: list[float]) -> dict:
    """Least-squares line of ``values`` over ``minutes`` (scipy.stats.linregress): slope, intercept, R²."""
    from scipy.stats import linregress

    fit = linregress(minutes, values)
    return {"slope": float(fit.slope), "intercept": float(fit.intercept), "r2": float(fit.rvalue ** 2)}


def marginal_costs(minutes: list[float], seconds: list[float]) -> list[float]:
    """Extra seconds per extra minute between consecutive durations."""
    return [(s1 - s0) / (m1 - m0) for m0, m1, s0, s1 in zip(minutes, minutes[1:], seconds, seconds[1:])]


def judge_linear(rows: list[dict], clock: str = "cpu_s") -> dict:
    """Linearity of ``clock`` seconds (``cpu_s`` or ``wall_s``) over minutes: fit, marginal steps, verdict."""
    minutes, seconds = [r["minutes"] for r in rows], [r[clock] for r in rows]
    fit = linear_fit(minutes, seconds)
    steps = marginal_costs(minutes, seconds)
    deviation = max(abs(step / fit["slope"] - 1) for step in steps) if fit["slope"] > 0 else float("inf")
    per_minute = [s / m for m, s in zip(minutes, seconds)]
    return {**fit, "clock": clock, "marginal_s_per_min": steps, "max_step_deviation": deviation,
            "s_per_min": per_minute,
            "s_per_min_spread": (max(per_minute) - min(per_minute)) / (sum(per_minute) / len(per_minute)),
            "passed": bool(fit["r2"] >= R2_MIN and deviation <= STEP_TOLERANCE)}


def judge_memory(pair: list[dict]) -> dict:
    """Peak RSS of the longer video over the shorter one's."""
    short, long = pair
    ratio = long["peak_rss_mib"] / short["peak_rss_mib"]
    return {"ratio": ratio, "duration_ratio": long["minutes"] / short["minutes"],
            "frames": [short["frames"], long["frames"]], "windows": [short["windows"], long["windows"]],
            "passed": bool(ratio <= RSS_MAX_RATIO)}


def _per_hour(rows: list[dict], value) -> float:
    return sum(value(r) for r in rows) / (sum(r["minutes"] for r in rows) / 60)


def stage_table(rows: list[dict]) -> list[dict]:
    """Seconds per video-hour of each stage (wall and CPU) over ``rows`` pooled, the decode+encode phase, totals."""
    out = [{"stage": "probe (timestamps, fingerprint)"},
           {"stage": "shot detection (TransNetV2, the default)"},
           {"stage": "decode (read-ahead thread; CPU: that thread)"},
           {"stage": "encode (FlowEncoder; CPU: that thread)"}]
    for row, stage in zip(out, STAGES):
        row["wall"] = _per_hour(rows, lambda r, s=stage: r["stage_wall_s"][s])
        row["cpu"] = _per_hour(rows, lambda r, s=stage: r["stage_cpu_s"][s])
    alone = {k: _per_hour(rows, lambda r, k=k: r[f"{k}_s"] - r[f"stage_{k}_s"]["probe"] - r[f"stage_{k}_s"]["shots"])
             for k in ("wall", "cpu")}
    total = {k: _per_hour(rows, lambda r, k=k: r[f"{k}_s"]) for k in ("wall", "cpu")}
    content = {k: _per_hour(rows, lambda r, k=k: r["content"][k]) for k in ("wall", "cpu")}
    shots = {k: _per_hour(rows, lambda r, k=k: r[f"stage_{k}_s"]["shots"]) for k in ("wall", "cpu")}
    out.append({"stage": "decode + encode phase (they overlap; rest of the run: plan, parts)", **alone})
    out.append({"stage": "shot detection (PySceneDetect content, `--shots content`)", **content})
    out.append({"stage": "**total, default (TransNetV2)**", **total})
    out.append({"stage": "**total, `--shots content`**", **{k: total[k] - shots[k] + content[k] for k in total}})
    return out


def frame_store_cost(rows: list[dict], pair: list[dict]) -> dict:
    """The frame store's cost per video-hour, pooled over ``rows`` (the duration series): wall and CPU seconds of
    the thumbnails (inside decode), packing them, and ``sync_frames`` (``frame_rows`` and the upsert; pooled, and
    its marginal cost: the slope of a line over the durations, without its fixed cost per call); packed
    bytes per frame and per hour; the Milvus Lite file's growth per hour. And the thumbnails' wall seconds per
    frame of the 720p ``pair``, for a 720p, 24 fps hour."""
    stages = {f"{stage}_{clock}": _per_hour(rows, lambda r, s=stage, c=clock: r[f"stage_{c}_s"][s])
              for stage in FRAME_STAGES for clock in ("wall", "cpu")}
    sync = {f"sync_{clock}": _per_hour(rows, lambda r, c=clock: r["frame_store"][f"sync_{c}_s"])
            for clock in ("wall", "cpu")}
    frames = sum(r["frame_store"]["frames"] for r in rows)
    packed = sum(r["frame_store"]["packed_bytes"] for r in rows)
    thumb_720p = sum(r["stage_wall_s"]["thumbnails"] for r in pair) / max(1, sum(r["frames"] for r in pair))
    # sync_frames has a fixed cost per call (the collection made, its videos read back): the slope of its wall
    # seconds over minutes is what one more video-hour adds
    minutes = [r["minutes"] for r in rows]
    write_line = linear_fit(minutes, [r["frame_store"]["sync_wall_s"] for r in rows])
    write_cpu_line = linear_fit(minutes, [r["frame_store"]["sync_cpu_s"] for r in rows])
    return {**stages, **sync, "sync_wall_marginal": write_line["slope"] * 60, "sync_wall_fixed": write_line["intercept"],
            "sync_cpu_marginal": write_cpu_line["slope"] * 60,
            "total_wall": stages["thumbnails_wall"] + stages["pack_wall"] + sync["sync_wall"],
            "total_cpu": stages["thumbnails_cpu"] + stages["pack_cpu"] + sync["sync_cpu"],
            "packed_bytes_per_frame": packed / max(1, frames),
            "packed_mb": packed / max(1, frames) * REAL_FPS * 3600 / 1e6,
            "blocks_per_hour": _per_hour(rows, lambda r: r["frame_store"]["blocks"]),
            "disk_mb": _per_hour(rows, lambda r: r["frame_store"]["disk_bytes"]) / 1e6,
            "thumbnails_720p_ms_per_frame": thumb_720p * 1e3,
            "thumbnails_720p_s_per_hour": thumb_720p * REAL_FPS * 3600}


def hour_at_720p(pair: list[dict]) -> dict:
    """A 720p, 24 fps hour extrapolated from the pair's per-frame (probe, shots, decode) and per-window (encode)
    wall costs; windows per hour at the default 0.5 s stride."""
    frames = sum(r["frames"] for r in pair)
    windows = sum(r["windows"] for r in pair)
    per_frame = {s: sum(r["stage_wall_s"][s] for r in pair) / frames for s in ("probe", "shots", "decode")}
    per_window = sum(r["stage_wall_s"]["encode"] for r in pair) / max(1, windows)
    windows_per_hour = 3600 / 0.5
    seconds = {**{s: v * REAL_FPS * 3600 for s, v in per_frame.items()}, "encode": per_window * windows_per_hour}
    return {"per_frame_s": per_frame, "per_window_s": per_window, "windows_per_hour": windows_per_hour,
            "seconds_per_hour": seconds, "sum": sum(seconds.values()),
            "bound": seconds["probe"] + seconds["shots"] + max(seconds["decode"], seconds["encode"])}


def _marginal(seconds: float) -> str:
    """A slope's seconds per video-hour; a negative one is below the run's resolution (the fixed cost per call
    dominates at these durations)."""
    return f"{seconds:.1f}" if seconds >= 0 else "~0 (below resolution)"


def _fmt_duration(minutes: float) -> str:
    return f"{minutes * 60:.0f} s" if minutes < 5 else f"{minutes:g} min"


def markdown(result: dict) -> str:
    linear, pair, lin, mem = result["linear_rows"], result["memory_rows"], result["linear"], result["memory"]
    wall = result["linear_wall"]
    s_lin, s_mem = result["settings"]["linear"], result["settings"]["memory"]
    lines = [f"Runs ({s_lin['size'][0]}x{s_lin['size'][1]} at {s_lin['fps']:g} fps for the duration series; "
             f"{s_mem['size'][0]}x{s_mem['size'][1]} at {s_mem['fps']:g} fps for the memory pair), each in a fresh "
             "process, CLI defaults (16 x 4 frames every 0.5 s, TransNetV2, FlowEncoder):", "",
             "| video | frames | windows | wall s | CPU s | shots s | decode s | encode s | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in linear + pair:
        w = r["stage_wall_s"]
        lines.append(f"| {_fmt_duration(r['minutes'])} {r['size'][0]}x{r['size'][1]} @ {r['fps']:g} fps | {r['frames']} | "
                     f"{r['windows']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {w['shots']:.1f} | "
                     f"{w['decode']:.1f} | {w['encode']:.1f} | {r['peak_rss_mib']:.0f} |")
    load = [r["transnet_load_s"] for r in linear + pair]
    peaks = [r["peak_rss_mib"] for r in linear]
    hour = result["hour_720p"]
    lines += ["", f"TransNetV2 weights load in {min(load):.1f}-{max(load):.1f} s per process (not in the times); "
              "stage columns are wall seconds inside each stage (decode overlaps encode).", "",
              f"- **Linear in duration** (CPU): {lin['slope']:.1f} s per minute of video + {lin['intercept']:.1f} s, "
              f"R² = {lin['r2']:.4f}; marginal s/min per step {', '.join(f'{v:.1f}' for v in lin['marginal_s_per_min'])} "
              f"(largest deviation from the slope {lin['max_step_deviation']:.0%}). Wall clock (shared machine): "
              f"R² = {wall['r2']:.4f}, steps {', '.join(f'{v:.1f}' for v in wall['marginal_s_per_min'])} s/min.",
              f"- **Peak memory**: {_fmt_duration(pair[1]['minutes'])} / {_fmt_duration(pair[0]['minutes'])} at "
              f"{s_mem['size'][0]}x{s_mem['size'][1]}, {s_mem['fps']:g} fps = **{mem['ratio']:.3f}x** "
              f"({pair[1]['peak_rss_mib']:.0f} vs {pair[0]['peak_rss_mib']:.0f} MiB; {mem['duration_ratio']:.1f}x the "
              f"duration, {mem['frames'][1]} vs {mem['frames'][0]} frames, {mem['windows'][1]} vs {mem['windows'][0]} "
              f"windows). The {s_lin['size'][0]}x{s_lin['size'][1]} runs peak at {min(peaks):.0f}-{max(peaks):.0f} MiB "
              "(mostly torch and TransNetV2).", "",
              f"Seconds per video-hour by stage ({s_lin['size'][0]}x{s_lin['size'][1]}, {s_lin['fps']:g} fps, pooled "
              f"over the duration series; {result['machine']['cpus']} CPUs, shared):", "",
              "| stage | wall s / video-hour | CPU s / video-hour |", "|---|---:|---:|"]
    lines += [f"| {row['stage']} | {row['wall']:.0f} | {row['cpu']:.0f} |" for row in result["stages"]]
    lines += ["", f"720p at {REAL_FPS:g} fps, extrapolated from the memory pair ({hour['per_frame_s']['decode'] * 1e3:.1f} ms "
              f"decode and {hour['per_frame_s']['shots'] * 1e3:.1f} ms TransNetV2 per frame, "
              f"{hour['per_window_s'] * 1e3:.0f} ms encode per window, {hour['windows_per_hour']:.0f} windows per hour), "
              "wall s per video-hour: " + ", ".join(f"{k} {v:.0f}" for k, v in hour["seconds_per_hour"].items())
              + f"; {hour['bound']:.0f}-{hour['sum']:.0f} s in all (decode and encode overlapping fully / not at all), "
              f"{hour['bound'] / 3600:.1f}-{hour['sum'] / 3600:.1f}x real time."]
    frames = result["frame_store"]
    lines += ["", f"Frame store (issue 19; {s_lin['size'][0]}x{s_lin['size'][1]}, {s_lin['fps']:g} fps, pooled over the "
              "duration series): per video-hour", "", "| frame store stage | wall s / video-hour | CPU s / video-hour |",
              "|---|---:|---:|",
              f"| thumbnails (`fingerprint.thumbnails`, in decode's thread; part of decode above) | "
              f"{frames['thumbnails_wall']:.1f} | {frames['thumbnails_cpu']:.1f} |",
              f"| pack (`fingerprint.pack`, zlib) | {frames['pack_wall']:.1f} | {frames['pack_cpu']:.1f} |",
              f"| write (`index.sync_frames`: frame_rows and the Milvus Lite upsert) | {frames['sync_wall']:.1f} | "
              f"{frames['sync_cpu']:.1f} |",
              f"| write, marginal (slope of a line over the durations; {frames['sync_wall_fixed']:.1f} s wall fixed per "
              f"call) | {_marginal(frames['sync_wall_marginal'])} | {_marginal(frames['sync_cpu_marginal'])} |",
              f"| **total** (pooled write) | {frames['total_wall']:.1f} | {frames['total_cpu']:.1f} |",
              f"| **total** (marginal write) | {_marginal(frames['thumbnails_wall'] + frames['pack_wall'] + max(0.0, frames['sync_wall_marginal']))} | "
              f"{_marginal(frames['thumbnails_cpu'] + frames['pack_cpu'] + max(0.0, frames['sync_cpu_marginal']))} |",
              "",
              f"Bytes: {frames['packed_bytes_per_frame']:.0f} B a frame packed (24 x 24 grey, zlib), "
              f"{frames['packed_mb']:.1f} MB per {REAL_FPS:g} fps hour; the Milvus Lite file grows by "
              f"{frames['disk_mb']:.1f} MB per video-hour ({frames['blocks_per_hour']:.0f} blocks: base64 text, times, "
              f"the 256-d vector and its index). Thumbnails at {s_mem['size'][0]}x{s_mem['size'][1]} (the memory pair): "
              f"{frames['thumbnails_720p_ms_per_frame']:.2f} ms a frame, {frames['thumbnails_720p_s_per_hour']:.0f} s per {REAL_FPS:g} fps hour."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_long_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny videos: the whole path, targets not judged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/long_cost.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, _child)

    run = BenchRun("long_cost", argv, quick=args.quick, out=args.out)
    settings = QUICK if args.quick else FULL
    rows: dict[str, list[dict]] = {"linear": [], "memory": []}
    with tempfile.TemporaryDirectory(prefix="bench_long_cost_") as tmp:
        for kind in ("linear", "memory"):
            setting = settings[kind]
            for index, seconds in enumerate(setting["seconds"]):
                folder = Path(tmp) / f"{kind}_{index}"
                generated_0 = time.perf_counter()
                make_video(folder / "videos", seconds, setting["size"], setting["fps"], kind, args.seed + index)
                generate_s = time.perf_counter() - generated_0
                row = _run_child({"folder": str(folder / "videos"), "out": str(folder / "embeddings")})
                row["generate_s"] = generate_s
                rows[kind].append(row)
                print(f"[long_cost] {kind} {seconds:.0f} s: {row['frames']} frames, {row['windows']} windows, "
                      f"{row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU, peak {row['peak_rss_mib']:.0f} MiB "
                      f"(generated in {generate_s:.1f} s)", file=sys.stderr, flush=True)
    linear = judge_linear(rows["linear"])
    memory = judge_memory(rows["memory"])
    s_lin, s_mem = settings["linear"], settings["memory"]
    run.target("linear", linear["r2"], "R²",
               f"indexing cost linear in duration (CPU s: R² >= {R2_MIN}, each step's marginal s/min within "
               f"±{STEP_TOLERANCE:.0%} of the slope)", passed=linear["passed"],
               detail=(f"{linear['slope']:.1f} CPU s per minute of video, largest step deviation "
                       f"{linear['max_step_deviation']:.0%} (" + ", ".join(f"{v:.0f}" for v in s_lin["seconds"])
                       + f" s at {s_lin['size'][0]}x{s_lin['size'][1]}, {s_lin['fps']:g} fps)"))
    run.target("memory", memory["ratio"], "x", f"peak RSS of a 60-min 720p video <= {RSS_MAX_RATIO:.2f}x a 5-min one",
               passed=memory["passed"],
               detail=(f"{s_mem['seconds'][1]:.0f} s vs {s_mem['seconds'][0]:.0f} s at {s_mem['size'][0]}x"
                       f"{s_mem['size'][1]}, {s_mem['fps']:g} fps ({memory['frames'][1]} vs {memory['frames'][0]} "
                       "frames; 60 vs 5 min not run: ~1 h on 2 cores; the read-ahead queue's fill varies by up to "
                       "16 windows, see bench_long_cost's docstring)"))
    frames = frame_store_cost(rows["linear"], rows["memory"])
    record = "a cost record, no target (issue 19: what the frame store costs per video-hour)"
    run.target("frame_store_s_per_hour", frames["total_wall"], "s per video-hour",
               "issue 19: seconds per video-hour for the frame store (thumbnails, pack, sync_frames)", passed=True,
               detail=(f"thumbnails {frames['thumbnails_wall']:.1f}, pack {frames['pack_wall']:.1f}, write "
                       f"{frames['sync_wall']:.1f} s (marginal {_marginal(frames['sync_wall_marginal'])} s, fixed "
                       f"{frames['sync_wall_fixed']:.1f} s per call) at {s_lin['size'][0]}x{s_lin['size'][1]}, {s_lin['fps']:g} fps; "
                       f"thumbnails at {s_mem['size'][0]}x{s_mem['size'][1]} {frames['thumbnails_720p_s_per_hour']:.0f} s "
                       f"per {REAL_FPS:g} fps hour"), not_judged=record)
    run.target("frame_store_mb_per_hour", frames["disk_mb"], "MB per video-hour",
               "issue 19: bytes per video-hour of the frame store (Milvus Lite file growth)", passed=True,
               detail=(f"{frames['packed_bytes_per_frame']:.0f} B a frame packed, {frames['packed_mb']:.1f} MB an "
                       "hour of packed thumbnails"), not_judged=record)
    result = {"settings": {k: {**v, "seconds": list(v["seconds"]), "size": list(v["size"])} for k, v in settings.items()},
              "linear_rows": rows["linear"], "memory_rows": rows["memory"], "linear": linear,
              "linear_wall": judge_linear(rows["linear"], "wall_s"), "memory": memory,
              "stages": stage_table(rows["linear"]), "hour_720p": hour_at_720p(rows["memory"]), "frame_store": frames}
    return run.finish(markdown({**result, "machine": run.machine}), **result)


if __name__ == "__main__":
    main()
