"""Short animated previews of a time range of a video, self-contained for code-free HTML reports.

A preview is an animated WebP (default) or GIF that loops forever, embedded in the page as a
base64 ``data:`` URI in an ``<img>``: the executed notebook and its nbconvert HTML carry it with
no side files and no JavaScript, so a shared report still plays it. WebP keeps full colour and is far
smaller (4 s of a 320x240 synthetic long video, 24 frames at 192 px: 46 kB as WebP quality 70,
818 kB as GIF) and plays in every current browser (Chrome, Edge, Firefox 65+, Safari 14+);
``image_format="gif"`` is there for older viewers.

* :func:`animated_preview` decodes only the frames it shows (through :mod:`motionmatch.video.decode`,
  times in seconds from the file's real timestamps), plays them at real speed and shrinks frame
  count and width until the bytes fit ``max_bytes``.
* :func:`preview_html` wraps one preview in a ``<figure>`` captioned with the file name and the
  time range; :func:`preview_row` puts several side by side (the query first, then the segments
  found), for ``IPython.display.HTML``; :func:`segment_previews` makes that row for a search's segments.

Bad ranges (negative, empty, past the end) and unreadable files fail before any frame of the
range is decoded, with the file and its valid range in the message.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import ParameterError
from ..validation import check_choice, check_scalar

logger = logging.getLogger(__name__)

FORMATS = ("webp", "gif")
MIME_TYPES = {"webp": "image/webp", "gif": "image/gif"}
DEFAULT_MAX_BYTES = 300_000  # per preview: a row of a query and 5 segments stays under ~2.5 MB of HTML
MIN_WIDTH = 32  # pixels: the smallest width shrinking goes down to
MIN_FRAMES = 2  # the fewest frames shrinking keeps (an animation needs two)
MAX_PREVIEW_FPS = 50.0  # browsers slow GIF frames shorter than 20 ms to 100 ms


def format_time(seconds: float) -> str:
    """``mm:ss.s`` (``h:mm:ss.s`` from one hour on): 75.25 -> ``"01:15.2"``."""
    seconds = check_scalar(seconds, "seconds", float, min_value=0)
    tenths = int(round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    text = f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{text}" if hours else text


def format_range(start_s: float, end_s: float) -> str:
    """``"00:12.0–00:15.5"``."""
    return f"{format_time(start_s)}\u2013{format_time(end_s)}"


def _check_range(path: str, start_s: float, end_s: float) -> tuple[float, float]:
    """Numbers and order of a range, before the file is opened."""
    start_s = check_scalar(start_s, f"start_s for {path}", float)
    end_s = check_scalar(end_s, f"end_s for {path}", float)
    if start_s < 0:
        raise ParameterError(f"{path}: start_s={start_s:g} is negative; times are seconds from the first frame (>= 0)")
    if start_s >= end_s:
        raise ParameterError(f"{path}: start_s={start_s:g} must be smaller than end_s={end_s:g}; "
                             "give the range as (start, end) in seconds")
    return start_s, end_s


def _check_inside(path: str, start_s: float, end_s: float, duration_s: float, fps: float) -> float:
    """The range against the video's real duration (half a frame of slack at the end); returns the clamped end."""
    slack = 0.5 / fps if fps > 0 else 0.0
    if start_s >= duration_s or end_s > duration_s + slack:
        raise ParameterError(f"{path}: the range {start_s:g}-{end_s:g} s ({format_range(start_s, end_s)}) lies outside "
                             f"the video, which runs 0-{duration_s:.3f} s ({format_range(0.0, duration_s)}); "
                             "choose start_s < end_s within it")
    return min(end_s, duration_s)


def _sample_frames(stamps: np.ndarray, start_s: float, end_s: float, fps: float,
                   max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices shown at evenly spaced times of ``[start_s, end_s)`` and the time each starts showing.

    At most ``max_frames`` times, at most ``fps`` per second; a frame shown at consecutive
    times is kept once (so a low frame-rate video gives fewer, longer frames).
    """
    count = int(min(max_frames, max(1, math.ceil((end_s - start_s) * fps - 1e-9))))
    times = start_s + (end_s - start_s) * np.arange(count) / count
    steps = np.diff(stamps)
    slack = 0.25 * float(np.median(steps)) if len(steps) else 0.0  # decord's timestamps are float32
    indices = np.clip(np.searchsorted(stamps, times + slack, side="right") - 1, 0, len(stamps) - 1)
    first = np.r_[True, indices[1:] != indices[:-1]]
    return indices[first], times[first]


def _resize(frames: Iterable[np.ndarray], width: int) -> list:
    from PIL import Image

    images = []
    for frame in frames:
        image = frame if isinstance(frame, Image.Image) else Image.fromarray(frame)
        if image.width > width:
            height = max(1, int(round(image.height * width / image.width)))
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        images.append(image)
    return images


def _encode(images: list, durations_ms: list[int], image_format: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": quality, "method": 4} if image_format == "webp" else {"optimize": False, "disposal": 1}
    images[0].save(buffer, format=image_format.upper(), save_all=True, append_images=images[1:],
                   duration=durations_ms if len(images) > 1 else durations_ms[0], loop=0, **options)
    return buffer.getvalue()


def _durations_ms(times: np.ndarray, end_s: float) -> list[int]:
    """How long each frame shows: until the next one's time, the last until ``end_s`` (at least 20 ms)."""
    edges = np.r_[times, end_s]
    return [max(20, int(round(1000 * step))) for step in np.diff(edges)]


def animated_preview(path: str | os.PathLike, start_s: float, end_s: float, max_frames: int = 24, width: int = 192,
                     fps: float = 8.0, max_bytes: int = DEFAULT_MAX_BYTES, image_format: str = "webp",
                     quality: int = 70, backend: str | None = None) -> bytes:
    """An animated image of ``path`` from ``start_s`` to ``end_s`` (seconds), looping forever.

    Shows up to ``max_frames`` frames sampled at up to ``fps`` per second, each held until the
    next, so the preview plays at the video's speed. Frames are at most ``width`` pixels wide
    (never enlarged). When the bytes exceed ``max_bytes``, frames and width are reduced (down to
    :data:`MIN_FRAMES` frames and :data:`MIN_WIDTH` pixels) and a log line says so; if even
    that is too large, a ParameterError says by how much. ``image_format`` is ``"webp"`` or ``"gif"``;
    ``quality`` (0-100) applies to WebP. Raises VideoError for an unreadable file and
    ParameterError for a range outside the video, both before the range is decoded. At most
    ``max_frames`` frames are decoded, held at full size only until they are scaled down.
    """
    from ..video.decode import open_video

    path = os.fspath(path)
    start_s, end_s = _check_range(path, start_s, end_s)
    max_frames = check_scalar(max_frames, "max_frames", int, min_value=1, max_value=240)
    width = check_scalar(width, "width", int, min_value=MIN_WIDTH)
    fps = check_scalar(fps, "fps", float, min_value=0, max_value=MAX_PREVIEW_FPS, include_min=False)
    max_bytes = check_scalar(max_bytes, "max_bytes", int, min_value=1)
    image_format = check_choice(image_format, "image_format", FORMATS)
    quality = check_scalar(quality, "quality", int, min_value=0, max_value=100)

    video = open_video(path, backend)  # VideoError here: missing, empty, not a video, ...
    info = video.info()
    end_s = _check_inside(path, start_s, end_s, info.duration_s, info.fps)
    indices, times = _sample_frames(video.timestamps(), start_s, end_s, fps, max_frames)
    images = _resize(video.read(indices), width)  # only the shown frames are decoded

    keep, size = len(images), images[0].width
    while True:
        chosen = np.unique(np.round(np.linspace(0, len(images) - 1, keep)).astype(int))
        shown = _resize([images[i] for i in chosen], size)
        data = _encode(shown, _durations_ms(times[chosen], end_s), image_format, quality)
        if len(data) <= max_bytes:
            if keep < len(images) or size < images[0].width:
                logger.info("preview of %s %s shrunk to %d frames, %d px wide to fit max_bytes=%d",
                            path, format_range(start_s, end_s), len(chosen), size, max_bytes)
            return data
        smallest_keep, smallest_size = min(MIN_FRAMES, len(images)), min(MIN_WIDTH, images[0].width)
        if keep <= smallest_keep and size <= smallest_size:
            advice = "raise max_bytes or lower quality" if image_format == "webp" else "raise max_bytes or use webp"
            raise ParameterError(
                f"{path}: the preview of {format_range(start_s, end_s)} takes {len(data)} bytes even at "
                f"{len(chosen)} frames, {size} px wide ({image_format}), over max_bytes={max_bytes}; {advice}")
        excess = len(data) / max_bytes
        keep = max(smallest_keep, min(keep - 1, int(keep / math.sqrt(excess))))
        size = max(smallest_size, min(size - 1, int(size / excess ** 0.25)))


def _mime(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return MIME_TYPES["webp"]
    if data[:4] == b"GIF8":
        return MIME_TYPES["gif"]
    raise ParameterError("preview bytes are neither WebP nor GIF")


def preview_html(path: str | os.PathLike, start_s: float, end_s: float, caption: str = "", **kwargs) -> str:
    """A ``<figure>`` holding the preview as a data-URI ``<img>``, captioned ``caption``, file name and range.

    ``kwargs`` go to :func:`animated_preview`. The HTML needs no files and no scripts.
    """
    data = animated_preview(path, start_s, end_s, **kwargs)
    name = Path(os.fspath(path)).name
    where = f"{name} \u00b7 {format_range(float(start_s), float(end_s))}"
    lines = [html.escape(str(caption))] if caption else []
    lines.append(html.escape(where))
    source = f"data:{_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"
    return (f'<figure style="margin:0;display:inline-block;text-align:center">'
            f'<img src="{source}" alt="{html.escape(where, quote=True)}"'
            f' title="{html.escape(os.fspath(path), quote=True)}"'
            f' style="display:block;max-width:100%;border-radius:3px"/>'
            f'<figcaption style="font-size:11px;line-height:1.3;max-width:220px;word-break:break-all">'
            f'{"<br>".join(lines)}</figcaption></figure>')


def preview_row(items: Iterable[str], title: str = "") -> str:
    """Previews (``preview_html`` strings) side by side in a wrapping flex row, under an optional title."""
    items = list(items)
    if not items or not all(isinstance(item, str) for item in items):
        raise ParameterError("preview_row needs a non-empty list of preview_html strings")
    heading = f'<div style="font-weight:600;margin:4px 0">{html.escape(title)}</div>' if title else ""
    return (f'<div class="motionmatch-previews">{heading}'
            f'<div style="display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start">{"".join(items)}</div></div>')


def segment_previews(query_path: str | os.PathLike, query_start_s: float, query_end_s: float, segments: Iterable,
                     labels: Iterable[str] = (), n: int = 4, title: str = "Query and the segments found",
                     **kwargs) -> str:
    """A :func:`preview_row` of the query range, then the first ``n`` ``segments`` (objects with ``video_path``,
    ``start_s``, ``end_s``, ``score``, best first, e.g. ``SearchResult.segments``), each captioned with its rank,
    score and, where ``labels`` gives one (the ground truth it overlaps), that label. ``kwargs`` go to
    :func:`animated_preview`."""
    n = check_scalar(n, "n", int, min_value=0)
    labels = list(labels)
    items = [preview_html(query_path, query_start_s, query_end_s, caption="query", **kwargs)]
    for rank, segment in enumerate(list(segments)[:n], start=1):
        label = labels[rank - 1] if rank <= len(labels) and labels[rank - 1] else ""
        caption = f"#{rank} score {float(segment.score):.2f}" + (f" ({label})" if label else "")
        items.append(preview_html(segment.video_path, segment.start_s, segment.end_s, caption=caption, **kwargs))
    return preview_row(items, title=title)


__all__ = ["FORMATS", "DEFAULT_MAX_BYTES", "format_time", "format_range", "animated_preview", "preview_html",
           "preview_row", "segment_previews"]
