"""previews.py: animated previews decode as looping animations of the right time range, fit their byte
budget, and fail with the file and its valid range; their HTML survives the report's nbconvert rendering."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image, ImageSequence

from motionmatch.errors import ParameterError, VideoError
from motionmatch.report.previews import animated_preview, format_range, format_time, preview_html, preview_row
from motionmatch.video import write_video

FPS = 12.0
N_FRAMES = 24  # 2.0 s


def brightness(frame: int) -> int:
    """The grey level of frame ``frame`` of the clock video: time can be read back from a pixel."""
    return 8 + 10 * frame


@pytest.fixture(scope="module")
def clock_video(tmp_path_factory):
    """A 2 s, 12 fps video whose frame i is a flat grey of brightness(i)."""
    frames = np.stack([np.full((64, 80, 3), brightness(i), np.uint8) for i in range(N_FRAMES)])
    return write_video(tmp_path_factory.mktemp("clock") / "clock.mp4", frames, FPS)


@pytest.fixture(scope="module")
def noise_video(tmp_path_factory):
    """Random noise: compresses badly, so previews of it are large."""
    frames = np.random.default_rng(0).integers(0, 256, size=(N_FRAMES, 80, 96, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("noise") / "noise.mp4", frames, FPS)


def frames_of(data: bytes) -> tuple[Image.Image, list[np.ndarray], list[int]]:
    image = Image.open(io.BytesIO(data))
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(np.asarray(frame.convert("RGB"), dtype=float))
        durations.append(frame.info.get("duration", image.info.get("duration")))
    return image, frames, durations


@pytest.mark.parametrize("image_format", ["webp", "gif"])
def test_preview_loops_and_shows_the_asked_range(clock_video, image_format):
    data = animated_preview(clock_video, 1.0, 1.5, fps=FPS, image_format=image_format)
    image, frames, durations = frames_of(data)
    assert image.format == image_format.upper() and image.is_animated
    assert image.info["loop"] == 0  # forever
    assert len(frames) == 6  # frames 12..17
    assert [f.mean() for f in frames] == pytest.approx([brightness(i) for i in range(12, 18)], abs=6)
    assert sum(durations) == pytest.approx(500, abs=30)  # plays at the video's speed


def test_capped_frames_still_span_the_range_at_real_speed(clock_video):
    data = animated_preview(clock_video, 0.0, 2.0, max_frames=4, fps=FPS)
    _, frames, durations = frames_of(data)
    assert [f.mean() for f in frames] == pytest.approx([brightness(i) for i in (0, 6, 12, 18)], abs=6)
    assert durations == pytest.approx([500] * 4, abs=10)


def test_width_bounds_frames_and_is_never_enlarged(clock_video):
    assert Image.open(io.BytesIO(animated_preview(clock_video, 0.0, 1.0, width=40))).size == (40, 32)
    assert Image.open(io.BytesIO(animated_preview(clock_video, 0.0, 1.0, width=400))).size == (80, 64)


def test_variable_frame_rate_uses_the_real_timestamps(tmp_path):
    # frames 0-9 every 0.1 s, then every 0.5 s: frame 14 starts at 3.0 s (frame index / average fps says 11)
    stamps = [0.1 * i for i in range(10)] + [1.0 + 0.5 * (i - 10) for i in range(10, 20)]
    frames = np.stack([np.full((64, 80, 3), brightness(i), np.uint8) for i in range(20)])
    path = write_video(tmp_path / "vfr.mp4", frames, 10.0, timestamps_s=stamps)
    _, shown, _ = frames_of(animated_preview(path, 3.0, 4.0, fps=4.0))
    assert [f.mean() for f in shown] == pytest.approx([brightness(14), brightness(15)], abs=6)


def test_size_bound_shrinks_frames_and_width(noise_video):
    unbounded = animated_preview(noise_video, 0.0, 2.0, max_bytes=10**8)
    budget = len(unbounded) // 4
    bounded = animated_preview(noise_video, 0.0, 2.0, max_bytes=budget)
    full, small = Image.open(io.BytesIO(unbounded)), Image.open(io.BytesIO(bounded))
    assert len(bounded) <= budget
    assert small.n_frames > 1 and small.info["loop"] == 0
    assert small.n_frames < full.n_frames and small.width < full.width


def test_an_impossible_size_bound_says_so(noise_video):
    with pytest.raises(ParameterError, match=r"noise\.mp4.*even at 2 frames, 32 px wide.*max_bytes=200"):
        animated_preview(noise_video, 0.0, 2.0, max_bytes=200)


@pytest.mark.parametrize("start, end, message", [
    (-1.0, 1.0, "negative"),
    (1.0, 1.0, "must be smaller than end_s"),
    (1.5, 0.5, "must be smaller than end_s"),
    (1.0, 3.0, r"outside the video, which runs 0-2\.000 s \(00:00\.0–00:02\.0\)"),
    (2.5, 3.0, r"outside the video, which runs 0-2\.000 s"),
])
def test_bad_ranges_name_the_file_and_the_valid_range(clock_video, start, end, message):
    with pytest.raises(ParameterError, match=rf"clock\.mp4.*{message}"):
        animated_preview(clock_video, start, end)


def test_bad_files_fail_with_the_file_named(tmp_path):
    text = tmp_path / "page.mp4"
    text.write_text("<html>404</html>")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, reason in [(tmp_path / "missing.mp4", "file not found"), (text, "not a video"), (empty, "empty")]:
        with pytest.raises(VideoError, match=reason) as caught:
            animated_preview(path, 0.0, 1.0)
        assert caught.value.path == str(path)


def test_time_formatting():
    assert format_time(0) == "00:00.0"
    assert format_time(75.26) == "01:15.3"
    assert format_time(3725.0) == "1:02:05.0"
    assert format_range(12, 15.5) == "00:12.0–00:15.5"
    with pytest.raises(ParameterError):
        format_time(-1.0)


def test_preview_html_and_row(clock_video):
    figure = preview_html(clock_video, 1.0, 1.5, caption="#1 <score> 0.91", fps=FPS)
    assert figure.startswith("<figure") and figure.endswith("</figure>")
    assert "#1 &lt;score&gt; 0.91" in figure and "clock.mp4 · 00:01.0–00:01.5" in figure
    payload = re.search(r'src="data:image/webp;base64,([^"]+)"', figure).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert image.n_frames == 6 and image.info["loop"] == 0
    query = preview_html(clock_video, 0.0, 0.5, caption="query")
    row = preview_row([query, figure], title="Query and matches")
    assert "display:flex" in row and row.index(query) < row.index(figure) and "Query and matches" in row
    with pytest.raises(ParameterError):
        preview_row([])


def test_segment_previews_put_the_query_first_then_the_best_segments(clock_video):
    from motionmatch.report import segment_previews
    from motionmatch.search import Segment

    segments = [Segment(str(clock_video), 1.0, 1.5, 2.25), Segment(str(clock_video), 0.5, 1.0, 1.5),
                Segment(str(clock_video), 0.0, 0.5, 0.75)]
    row = segment_previews(clock_video, 0.0, 0.5, segments, labels=["rotate", ""], n=2, fps=FPS)
    captions = re.findall(r"<figcaption[^>]*>(.*?)<br>", row)
    assert captions == ["query", "#1 score 2.25 (rotate)", "#2 score 1.50"]  # the third segment is past n
    assert "clock.mp4 · 00:01.0–00:01.5" in row and "Query and the segments found" in row
    assert captions == re.findall(r"<figcaption[^>]*>(.*?)<br>", segment_previews(clock_video, 0.0, 0.5, segments[:2],
                                                                                  labels=["rotate"], fps=FPS))
    assert len(re.findall("<figure", segment_previews(clock_video, 0.0, 0.5, [], fps=FPS))) == 1  # the query alone


def test_previews_survive_the_reports_html_rendering(clock_video, tmp_path):
    """The code-free HTML people share keeps the animation inline (no side files, no scripts)."""
    import nbformat
    from IPython.display import HTML

    from motionmatch.report.notebooks import render_html

    row = preview_row([preview_html(clock_video, 0.0, 1.0, caption="query"),
                       preview_html(clock_video, 1.0, 2.0, caption="#1")])
    cell = nbformat.v4.new_code_cell("display(HTML(row))")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": HTML(row)._repr_html_()})]
    notebook = tmp_path / "07-previews.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), str(notebook))
    page = render_html(notebook).read_text(encoding="utf-8")
    assert page.count('src="data:image/webp;base64,') == 2
    assert "clock.mp4 · 00:01.0–00:02.0" in page and "display(HTML(row))" not in page
