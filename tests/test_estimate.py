"""The extraction time estimate: its arithmetic, its advice, and a real extraction with the tiny V-JEPA 2.

No sleeps and no wall-time thresholds: the long-run advice is forced with ``long_run_s`` /
``LONG_RUN_S``, and the estimate of a real run is compared with the run's own time within a
generous factor.
"""
from __future__ import annotations

import re
import time

import pytest

from motionmatch.extract import estimate as estimate_module
from motionmatch.extract.estimate import ExtractionEstimate, format_duration

ESTIMATE_LINE = re.compile(r"took ([\d.]+) s, ([\d.]+) s of it in the encoder \(([\d.]+) s/clip on (\S+), (\S+)\); "
                           r"(\d+) clips in all -> about (.+)")


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (59.4, "59 s"), (95, "1 min 35 s"), (3600, "1 h 0 min"),
                                           (5400, "1 h 30 min"), (90000, "1 d 1 h"), (-3, "0 s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_the_first_call_prints_once_and_multiplies_out():
    printed = []
    # started in the future: no wall time beyond the encoder's 2 s, so the numbers are exact by hand
    estimate = ExtractionEstimate(total_clips=100, encoder_id="vjepa2:x", print_fn=printed.append,
                                  long_run_s=10 ** 9, started=time.perf_counter() + 10 ** 6)
    assert estimate.observe(0, 1.0) is None and not printed  # nothing embedded yet: nothing to say
    message = estimate.observe(4, 2.0)
    assert printed == [message]
    assert estimate.seconds_per_clip == pytest.approx(0.5)  # 2 s for 4 clips
    assert estimate.estimated_total_s == pytest.approx(50.0)  # 100 clips at 0.5 s
    took, in_encoder, per_clip, device, encoder_id, clips, _ = ESTIMATE_LINE.search(message).groups()
    assert (float(took), float(in_encoder), float(per_clip), device, encoder_id, int(clips)) == \
        (2.0, 2.0, 0.5, "cpu", "vjepa2:x", 100)
    # a first video that took longer than its encoder call (decoding) counts its wall time
    slow = ExtractionEstimate(total_clips=10, encoder_id="flow:v1", print_fn=lambda text: None, long_run_s=10 ** 9,
                              started=time.perf_counter() - 8.0)
    slow.observe(4, 2.0)
    assert 2.0 <= slow.seconds_per_clip < 2.5  # about 8 s wall for 4 clips, not 2 s
    assert "To shrink it" not in message
    assert estimate.observe(4, 50.0) is None and len(printed) == 1  # said once


def test_the_first_video_s_planning_is_spread_over_its_windows_not_charged_to_the_first_batch():
    printed = []
    estimate = ExtractionEstimate(total_clips=1000, encoder_id="flow:v1", print_fn=printed.append,
                                  long_run_s=10 ** 9, started=time.perf_counter() - 11.0)
    estimate.note_setup(10.0, 100)  # shot detection of a 100-window video took 10 s, then 4 clips took 1 s
    estimate.observe(4, 1.0)
    assert estimate.seconds_per_clip == pytest.approx(1.0 / 4 + 10.0 / 100, abs=0.01)  # not 11 s / 4 clips
    assert "planning the first video took 10.00 s for its 100 windows" in printed[0]
    assert ESTIMATE_LINE.search(printed[0])
    estimate.note_setup(99.0, 1)  # once said, later videos change nothing
    assert estimate.setup_s == 10.0


def test_a_long_run_says_how_to_shrink_it():
    printed = []
    estimate = ExtractionEstimate(total_clips=2560, encoder_id="vjepa2:facebook/vjepa2-vitl-fpc64-256",
                                  frames_per_clip=64, clips_per_video=4, videos=640, long_run_s=60,
                                  print_fn=printed.append)
    message = estimate.observe(4, 212.0)  # 53 s per clip: the ViT-L on a CPU
    assert estimate.estimated_total_s >= 53 * 2560
    assert "about 1 d" in message
    for advice in ("To shrink it", "fewer videos (640 now)", "sample_videos_per_class=4", "clips_per_video=1",
                   "--clips-per-video 1", "64 now", "frames_per_clip=16", "CUDA GPU", "Ctrl-C"):
        assert advice in message, advice
    on_gpu = ExtractionEstimate(total_clips=2560, encoder_id="vjepa2:x", device="cuda:0", long_run_s=60,
                                print_fn=printed.append)
    assert "CUDA GPU" not in on_gpu.observe(4, 212.0)  # already on a GPU: no advice to get one


def test_nothing_to_embed_says_nothing():
    printed = []
    assert ExtractionEstimate(total_clips=0, encoder_id="flow:v1", print_fn=printed.append).observe(4, 1.0) is None
    assert printed == []


# ----------------------------------------------------------------------------- a real extraction
@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    from motionmatch.data.sources import load_source
    from motionmatch.data.synthetic import generate_sample_dataset

    folder = tmp_path_factory.mktemp("estimate") / "sample"
    generate_sample_dataset(folder, seed=3, videos_per_class_per_domain=1, groups_per_class_per_domain=1,
                            num_frames=24, size=(96, 64))
    frame, failures = load_source(folder / "manifest.csv")
    assert not failures
    return frame


def _extract(manifest, out_dir):
    from motionmatch.video.clips import ClipSpec
    from motionmatch.encoders import build_encoder
    from motionmatch.extract.local import extract_embeddings

    printed: list[str] = []
    summary = extract_embeddings(manifest, build_encoder("vjepa2-tiny"), out_dir, workers=0, progress=False,
                                 clip_spec=ClipSpec(frames_per_clip=4, clips_per_video=2), print_fn=printed.append)
    return summary, printed


def test_the_estimate_of_a_tiny_vjepa2_run_is_near_its_real_time(manifest, tmp_path):
    summary, printed = _extract(manifest, tmp_path / "embeddings")
    assert summary.embedded == len(manifest) >= 10
    estimates = [line for line in printed if line.startswith("estimate:")]
    assert len(estimates) == 1, printed
    took, in_encoder, per_clip, device, encoder_id, clips, _ = ESTIMATE_LINE.search(estimates[0]).groups()
    assert (device, encoder_id, int(clips)) == ("cpu", "vjepa2:tiny-seed0", 2 * len(manifest))
    assert float(took) >= float(in_encoder)
    estimated = float(per_clip) * int(clips)
    # one video out of many predicts the whole run: the first pays warm-up, so allow a generous factor
    assert summary.seconds / 10 <= estimated <= summary.seconds * 10, (estimated, summary.seconds)
    assert "To shrink it" not in estimates[0]
    # a resumed run with nothing left to embed says nothing
    again, printed_again = _extract(manifest, tmp_path / "embeddings")
    assert again.skipped_done == len(manifest) and not [line for line in printed_again if "estimate" in line]


def test_past_the_threshold_the_run_prints_the_advice(manifest, tmp_path, monkeypatch):
    monkeypatch.setattr(estimate_module, "LONG_RUN_S", 0.0)  # every run is "long": the advice must show
    _, printed = _extract(manifest, tmp_path / "embeddings")
    message = "\n".join(printed)
    assert "this run is long" in message and "clips_per_video=1" in message and "CUDA GPU" in message
    assert f"fewer videos ({len(manifest)} now)" in message and "(2 now" in message and "(4 now" in message


def test_the_report_passes_only_the_estimate_to_the_terminal():
    import io

    from motionmatch.report.notebooks import EstimateEcho

    terminal = io.StringIO()
    echo = EstimateEcho("01-x.ipynb", terminal)
    printed = []
    message = ExtractionEstimate(total_clips=100, encoder_id="vjepa2:x", long_run_s=0, clips_per_video=4,
                                 print_fn=printed.append).observe(4, 8.0)
    notebook_output = f"source: /data\n{message}\nExtractSummary(embedded=25)\n  indented, but not the estimate's\n"
    for start in range(0, len(notebook_output), 7):  # the kernel sends output in arbitrary chunks
        echo.write(notebook_output[start:start + 7])
    echoed = terminal.getvalue().splitlines()
    assert echoed == [f"[report] 01-x.ipynb: {line}" for line in message.splitlines()]
    assert len(echoed) >= 4  # the estimate and its advice
