"""Decoding benchmark: decord 0.6.0 vs decord2 vs PyAV, uniformly spaced vs consecutive frames.

Videos at 540p (and 1080p in full mode) are generated locally with ``motionmatch.data.synthetic.write_video``
(H.264, libx264 ``veryfast``, crf 18, default GOP) from a panning smooth-noise texture, and cached in
``bench/out/videos``. Each measurement runs in its own subprocess, because decord 0.6.0 and decord2
both install as ``import decord``: decord2 comes from the virtualenv, decord 0.6.0 from
``bench/out/decord060`` (``pip install --target ... --no-deps decord==0.6.0``; skipped with a note
when that install or import fails). Peak RSS is measured in the child (``VmHWM``: ``bench.harness.own_peak_mib``).

Backends measured:

* ``pyav``: ``motionmatch.video.decode.read_frames(..., backend="pyav")`` — the fallback path
  (sequential decode, keeps only the requested frames, stops after the last);
* ``motionmatch-decord``: ``read_frames(..., backend="decord")`` — the default path, including
  its up-front checks (stat, PyAV header parse and first-frame decode);
* ``decord2`` / ``decord-0.6.0``: the raw library call ``VideoReader(path).get_batch(indices)``.

Sampling patterns: ``uniform`` = 16 frames spread evenly over the whole video (how clips are
placed); ``consecutive`` = 32 consecutive frames starting in the middle of the video.

Usage::

    python bench/bench_decode.py --quick      # 540p, 10 s video, < 2 minutes
    python bench/bench_decode.py              # 540p and 1080p, 20 s videos, < 5 minutes

No targets: the table is what the backend choice rests on (``compare_decords``). Prints a markdown table and
writes ``bench/out/decode.json``. ``main(argv) -> dict`` for notebooks.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import (OUT_DIR, BenchRun, ChildFailed, child_env, child_main, own_peak_mib, run_child,
                           texture_video)

DECORD060_DIR = OUT_DIR / "decord060"

RESOLUTIONS = {"540p": (960, 540), "1080p": (1920, 1080)}
UNIFORM_FRAMES = 16  # frames spread evenly over the video
CONSECUTIVE_FRAMES = 32  # consecutive frames from the middle of the video
FPS = 30
BACKENDS = ("pyav", "motionmatch-decord", "decord2", "decord-0.6.0")
CHILD_TIMEOUT_S = 180


# ----------------------------------------------------------------------------- the child: one measurement
def _child(spec: dict) -> dict:
    """Runs in a subprocess: decode ``spec['indices']`` of ``spec['path']`` ``spec['repeats']`` times."""
    import resource

    import numpy as np

    backend, path, indices = spec["backend"], spec["path"], spec["indices"]
    if backend in ("pyav", "motionmatch-decord"):
        from motionmatch.video.decode import read_frames

        which = "pyav" if backend == "pyav" else "decord"

        def decode_once():
            return read_frames(path, indices, backend=which)
        library = "motionmatch"
    else:
        import decord

        library = f"decord {getattr(decord, '__version__', '?')} from {Path(decord.__file__).parent}"

        def decode_once():
            reader = decord.VideoReader(path, ctx=decord.cpu(0))
            return reader.get_batch(indices).asnumpy()
    rss_before_mib = own_peak_mib()
    seconds = []
    checksum = 0.0
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        frames = decode_once()
        seconds.append(time.perf_counter() - start)
        checksum = float(np.asarray(frames)[:, ::4, ::4].mean())  # a strided view: no float copy of the frames
        shape = list(frames.shape)
        del frames
    return {"seconds": seconds, "shape": shape, "mean_pixel": checksum, "library": library,
            "peak_rss_mib": own_peak_mib(), "rss_before_decode_mib": rss_before_mib,
            "getrusage_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _install_decord060() -> tuple[bool, str]:
    """pip-install decord 0.6.0 into its own folder (no deps, so the venv's numpy stays in charge)."""
    marker = DECORD060_DIR / "decord" / "__init__.py"
    if not marker.exists():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                   "--target", str(DECORD060_DIR), "decord==0.6.0"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return False, "pip install decord==0.6.0 timed out"
        if done.returncode != 0:
            return False, f"pip install decord==0.6.0 failed: {done.stderr.strip().splitlines()[-1:]}"
    check = subprocess.run([sys.executable, "-c", "import decord; print(decord.__version__)"],
                           env=child_env(first_paths=_first_paths("decord-0.6.0")), capture_output=True, text=True, timeout=60)
    if check.returncode != 0 or not check.stdout.strip().startswith("0.6"):
        return False, f"decord 0.6.0 does not import here: {(check.stderr.strip().splitlines() or ['?'])[-1]}"
    return True, f"decord {check.stdout.strip()} from {DECORD060_DIR}"


def _first_paths(backend: str) -> list:
    """decord 0.6.0's folder goes first on the child's PYTHONPATH (both wheels install as ``import decord``)."""
    return [DECORD060_DIR] if backend == "decord-0.6.0" else []


def _run_child(spec: dict) -> dict:
    try:
        return run_child("bench.bench_decode", spec, CHILD_TIMEOUT_S, first_paths=_first_paths(spec["backend"]),
                         unset=["MOTIONMATCH_DECODER"])
    except ChildFailed as error:  # one backend failing is a row of the table, not the end of the bench
        return {"error": str(error).strip().splitlines()[-1] if "timed out" not in str(error) else str(error)}


def _patterns(num_frames: int) -> dict[str, list[int]]:
    uniform = [round(i * (num_frames - 1) / (UNIFORM_FRAMES - 1)) for i in range(UNIFORM_FRAMES)]
    middle = max(0, min(num_frames - CONSECUTIVE_FRAMES, num_frames // 2))
    return {"uniform": uniform, "consecutive": list(range(middle, middle + min(CONSECUTIVE_FRAMES, num_frames)))}


def compare_decords(rows: list[dict]) -> dict | None:
    """decord2 against decord 0.6.0 and PyAV, per (video, pattern): the numbers the backend choice rests on."""
    cells: dict[tuple, dict] = {}
    for row in rows:
        if "frames_per_s" in row:
            cells.setdefault((row["video"], row["pattern"]), {})[row["backend"]] = row
    speed_vs_060, speed_vs_pyav, rss_vs_060 = [], [], []
    for backends in cells.values():
        if "decord2" in backends and "decord-0.6.0" in backends:
            speed_vs_060.append(backends["decord2"]["frames_per_s"] / backends["decord-0.6.0"]["frames_per_s"])
            rss_vs_060.append(backends["decord2"]["peak_rss_mib"] / backends["decord-0.6.0"]["peak_rss_mib"])
        if "decord2" in backends and "pyav" in backends:
            speed_vs_pyav.append(backends["decord2"]["frames_per_s"] / backends["pyav"]["frames_per_s"])
    if not speed_vs_060 and not speed_vs_pyav:
        return None

    def span(values: list[float]) -> str:
        return f"{min(values):.2f}-{max(values):.2f}x" if values else "not measured"

    text = (f"decord2 frames/s relative to decord 0.6.0: {span(speed_vs_060)}, peak RSS {span(rss_vs_060)}; "
            f"relative to PyAV: {span(speed_vs_pyav)} over {len(cells)} video x pattern cells. Choice: decord2 as "
            "the default (maintained, same API, speed close to 0.6.0's, which is unmaintained since 2021 with "
            "open memory leaks), PyAV as the fallback where decord2 does not install.")
    return {"decord2_vs_decord060_speed": speed_vs_060, "decord2_vs_decord060_rss": rss_vs_060,
            "decord2_vs_pyav_speed": speed_vs_pyav, "text": text}


def _markdown(rows: list[dict]) -> str:
    lines = ["| video | pattern | backend | frames | frames/s | vs PyAV | peak RSS MiB | note |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['video']} | {row['pattern']} | {row['backend']} | | | | | {row['error']} |")
            continue
        ratio = f"{row['speedup_vs_pyav']:.2f}x" if row.get("speedup_vs_pyav") else ""
        lines.append(f"| {row['video']} | {row['pattern']} | {row['backend']} | {row['frames']} | "
                     f"{row['frames_per_s']:.1f} | {ratio} | {row['peak_rss_mib']:.0f} | {row.get('note', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a markdown table; write bench/out/decode.json; return the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="540p only, a 10 s video, 2 repeats (< 2 minutes)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (best is kept)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (default bench/out/decode.json)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, _child)

    run = BenchRun("decode", argv, quick=args.quick, out=args.out)
    quick = args.quick
    repeats = args.repeats or (2 if quick else 3)
    num_frames = 300 if quick else 600
    resolutions = ["540p"] if quick else ["540p", "1080p"]

    backends = list(BACKENDS)
    notes: dict[str, str] = {}
    try:
        import decord  # noqa: F401  (decord2, from the virtualenv)
    except Exception as err:  # noqa: BLE001
        backends = [b for b in backends if b not in ("decord2", "motionmatch-decord")]
        notes["decord2"] = f"skipped: decord2 does not import ({err})"
    ok, message = _install_decord060()
    if not ok:
        backends.remove("decord-0.6.0")
        notes["decord-0.6.0"] = f"skipped: {message}"
    else:
        notes["decord-0.6.0"] = message

    rows: list[dict] = []
    for resolution in resolutions:
        video = texture_video(resolution, RESOLUTIONS[resolution], num_frames, fps=FPS)
        for pattern, indices in _patterns(num_frames).items():
            by_backend = {}
            for backend in backends:
                spec = {"backend": backend, "path": str(video), "indices": indices, "repeats": repeats}
                result = _run_child(spec)
                row = {"video": f"{resolution} {num_frames}f", "pattern": pattern, "backend": backend,
                       "frames": len(indices)}
                if "error" in result:
                    row["error"] = result["error"]
                else:
                    best = min(result["seconds"])
                    row.update({"seconds_best": best, "seconds_all": result["seconds"],
                                "frames_per_s": len(indices) / best, "peak_rss_mib": result["peak_rss_mib"],
                                "rss_before_decode_mib": result["rss_before_decode_mib"],
                                "mean_pixel": result["mean_pixel"], "library": result["library"]})
                by_backend[backend] = row
                rows.append(row)
            reference = by_backend.get("pyav", {}).get("frames_per_s")
            pixel_reference = by_backend.get("pyav", {}).get("mean_pixel")
            for row in by_backend.values():
                if reference and "frames_per_s" in row:
                    row["speedup_vs_pyav"] = row["frames_per_s"] / reference
                if pixel_reference is not None and "mean_pixel" in row and abs(row["mean_pixel"] - pixel_reference) > 1:
                    row["note"] = f"frames differ from PyAV's (mean {row['mean_pixel']:.1f} vs {pixel_reference:.1f})"

    table = _markdown(rows)
    comparison = compare_decords(rows)
    summary = (table + "\n" + "".join(f"\n- {backend}: {note}" for backend, note in notes.items())
               + (f"\n- {comparison['text']}" if comparison else ""))
    return run.finish(summary, repeats=repeats, num_frames=num_frames, fps=FPS, uniform_frames=UNIFORM_FRAMES,
                      consecutive_frames=CONSECUTIVE_FRAMES, notes=notes, rows=rows, table_markdown=table,
                      comparison=comparison)


if __name__ == "__main__":
    main()
