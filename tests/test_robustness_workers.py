"""A decode worker process that dies costs only the video it was decoding.

Real worker processes (spawn), real videos, real decoding; the fault is injected by a job function
that ends its process with ``os._exit`` on one file, as a decoder crash or the OOM killer would.
"""
from __future__ import annotations

import pytest

from motionmatch.video.clips import ClipSpec
from motionmatch.extract.workers import iter_decoded
from motionmatch.data.synthetic import render_motion_clip
from motionmatch.video import write_video

import hostile

SPEC = ClipSpec(frames_per_clip=4, frame_stride=1, clips_per_video=2)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    import numpy as np

    root = tmp_path_factory.mktemp("workers")
    rng = np.random.default_rng(0)
    paths = []
    for name in ("a", "b", "crash_c", "d", "e"):
        path = root / f"{name}.mp4"
        write_video(path, render_motion_clip("translate_left", "studio", rng, num_frames=12, size=(64, 48)), fps=12)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("workers", [1, 2])
def test_a_dying_worker_fails_only_its_video(videos, workers):
    results = list(iter_decoded(videos, SPEC, workers=workers, prefetch=2 * workers, job=hostile.decode_or_die))
    by_path = {result[0]: result for result in results}
    assert sorted(by_path) == sorted(videos) and len(results) == len(videos)  # every video once, none lost
    crashed = next(p for p in videos if "crash" in p)
    assert by_path[crashed][3] is None and "worker process died" in by_path[crashed][4]
    for path in videos:
        if path != crashed:
            assert by_path[path][4] is None and len(by_path[path][3]) == SPEC.clips_per_video
    hostile.record_tally("faults injected and survived", f"decode worker killed on 1 of 5 videos (workers={workers})",
                         "only that video failed; the pool restarted", f"{len(videos) - 1} videos decoded")


def test_a_worker_dying_while_the_consumer_is_busy_fails_only_its_video(videos):
    """The pool breaks between two results (the encoder is still busy with the last one), so the next
    *submission*, not a result, is where the broken pool shows: that must cost only the dying video too."""
    import time

    results = []
    for result in iter_decoded(videos, SPEC, workers=2, prefetch=4, job=hostile.decode_or_die):
        results.append(result)
        if len(results) == 1:
            time.sleep(3.0)  # a slow encoder: crash_c's worker dies meanwhile, before the next submission
    by_path = {result[0]: result for result in results}
    assert sorted(by_path) == sorted(videos) and len(results) == len(videos)
    crashed = next(p for p in videos if "crash" in p)
    assert "worker process died" in by_path[crashed][4]
    assert all(by_path[p][4] is None and len(by_path[p][3]) == SPEC.clips_per_video for p in videos if p != crashed)


def test_workers_that_cannot_start_say_what_to_do(videos, tmp_path):
    """A script without a __main__ guard: spawn re-runs it in each worker, so no worker can start."""
    import subprocess
    import sys

    script = tmp_path / "no_main_guard.py"
    script.write_text(
        "import pandas as pd\n"
        "from motionmatch.encoders import build_encoder\n"
        "from motionmatch.video.clips import ClipSpec\n"
        "from motionmatch.extract.local import extract_embeddings\n"
        f"manifest = pd.DataFrame({{'path': {videos[:2]!r}}})\n"
        f"extract_embeddings(manifest, build_encoder('flow', frames_per_clip=4), {str(tmp_path / 'out')!r},\n"
        "                   clip_spec=ClipSpec(4, 1, 2), workers=1, progress=False)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert "ParameterError" in last_line and "__main__" in last_line and "workers=0" in last_line


def test_workers_setting_is_parsed_one_way_for_notebooks_and_the_cli():
    from motionmatch.cli import build_parser
    from motionmatch.errors import ParameterError
    from motionmatch.extract import parse_workers

    assert [parse_workers(v) for v in ("auto", " AUTO ", "", None, "0", "3", 2)] == [None, None, None, None, 0, 3, 2]
    for bad in ("-1", "two", 1.5, True, -2):
        with pytest.raises(ParameterError, match="auto"):
            parse_workers(bad)
    parser, _ = build_parser()
    assert parser.parse_args(["extract", "videos", "--workers", "auto"]).workers is None
    assert parser.parse_args(["extract", "videos", "--workers", "2"]).workers == 2
    assert parser.parse_args(["extract", "videos"]).workers is None
    with pytest.raises(SystemExit):
        parser.parse_args(["extract", "videos", "--workers", "-1"])
