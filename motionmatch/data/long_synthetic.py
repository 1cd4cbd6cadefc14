"""Long synthetic videos with ground truth: several minutes of labelled motion moments per file.

Each video is a timeline of **segments** of random length (``min_segment_s`` to ``max_segment_s``,
2-20 s by default), each showing one of :data:`~motionmatch.data.synthetic.MOTION_CLASSES` in one of
:data:`~motionmatch.data.synthetic.DOMAINS`, or **distractor** footage (the sprite drifts at random,
no labelled motion). Segments are grouped in **shots**; how a segment starts is its ``transition``:

* ``"start"``: the first segment of the video;
* ``"cut"``: a hard cut: a new shot with a new look (a new group: background, sprite, colours,
  camera), drawn so that the background visibly changes;
* ``"continuous"``: the same shot goes on (same background, sprite, camera and field distractors)
  and only the motion changes, with the sprite starting where it was; the label always changes.

Inside a segment the motion repeats in cycles of ``cycle_s`` (2 s by default, the length of the
sample clips: 48 frames at 24 fps), with fresh magnitudes each cycle, the same renderer as
:mod:`motionmatch.data.synthetic` (its sprites, backgrounds and motion paths). Each cycle starts where
the previous one ended; when a cycle would leave the frame the whole cycle is shifted back in,
so the sprite may jump at a cycle start (as a new sample clip would start elsewhere).

Written under ``out_dir``: ``long_000.mp4`` ... (H.264 by :func:`~motionmatch.data.synthetic.write_video`,
frames streamed one at a time, so memory does not grow with the duration), ``ground_truth.csv``
with :data:`GROUND_TRUTH_COLUMNS` and ``cuts.csv`` with :data:`CUT_COLUMNS` (the hard cuts, to
score shot detection). **Distractor spans are in the ground truth** with label ``"distractor"``, so
each video's rows tile its whole timeline; an evaluation must treat them as "no moment" (never a
relevant target, never a query). ``group`` names the shot (``<video stem>_shot<k>``): segments of
one group share their look, so a "same motion" query takes its target from another group.

:func:`motionmatch.data.queries.write_copy_queries` then cuts **copy queries** (a range of one labelled segment,
re-encoded) with their localisation ground truth (``relevant.csv``). "Same motion" queries (a
range of another group with the same label) are for the evaluation protocol to draw; the sample
clips of :mod:`motionmatch.data.synthetic` are one source, as their groups never occur here.

Times are seconds on the file's own clock: frame ``i`` has presentation time ``i / fps``, a
segment is ``[first frame / fps, (last frame + 1) / fps)``, a cut is the time of its first frame.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import ParameterError
from .synthetic import CAMERA_MARGIN, DOMAINS, FIELD_SHAPES, MOTION_CLASSES, GroupStyle, _background, _hsv_rgb, _motion_path, _paint, draw_group_style
from ..video import write_video
from ..validation import check_choice, check_scalar

GROUND_TRUTH_COLUMNS = ("video", "start_s", "end_s", "label", "domain", "group", "transition")
CUT_COLUMNS = ("video", "time_s")
QUERY_COLUMNS = ("query_id", "path", "kind", "label", "video", "start_s", "end_s")  # a query and where it came from
TRANSITIONS = ("start", "cut", "continuous")
DISTRACTOR_LABEL = "distractor"
MIN_CUT_CHANGE = 20.0  # a hard cut's backgrounds differ by at least this mean absolute value (0-255)


@dataclass(frozen=True)
class PlannedSegment:
    """One segment of a long video's timeline, in frames ``[start_frame, end_frame)``."""

    start_frame: int
    end_frame: int
    label: str  # a motion class or DISTRACTOR_LABEL
    domain: str
    shot: int  # index of the shot (a new one after each hard cut)
    transition: str  # how the segment starts: one of TRANSITIONS


def plan_long_video(rng: np.random.Generator, duration_s: float, fps: float, min_segment_s: float = 2.0,
                    max_segment_s: float = 20.0, cut_probability: float = 0.5, distractor_probability: float = 0.15,
                    classes: Sequence[str] = MOTION_CLASSES, domains: Sequence[str] = DOMAINS) -> list[PlannedSegment]:
    """Draw a timeline that tiles ``round(duration_s * fps)`` frames with segments of the allowed lengths."""
    total = int(round(duration_s * fps))
    shortest, longest = int(math.ceil(min_segment_s * fps - 1e-9)), int(math.floor(max_segment_s * fps + 1e-9))
    if shortest < 1 or longest < 2 * shortest - 1:
        raise ParameterError(f"max_segment_s ({max_segment_s:g}) must be at least twice min_segment_s "
                             f"({min_segment_s:g}) so every duration can be tiled")
    if total < shortest:
        raise ParameterError(f"duration_s ({duration_s:g}) is shorter than one segment "
                             f"(min_segment_s={min_segment_s:g})")
    lengths, remaining = [], total
    while remaining > 0:
        if remaining <= longest:
            length = remaining
        else:  # leave at least one shortest segment behind
            length = int(rng.integers(shortest, min(longest, remaining - shortest) + 1))
        lengths.append(length)
        remaining -= length
    plan: list[PlannedSegment] = []
    start, shot, domain, label = 0, 0, "", ""
    for length in lengths:
        transition = "start" if not plan else ("cut" if rng.random() < cut_probability else "continuous")
        if transition != "continuous":
            shot += int(bool(plan))
            domain = str(domains[int(rng.integers(len(domains)))])
        options = list(classes) + [DISTRACTOR_LABEL]
        weights = np.r_[np.full(len(classes), (1 - distractor_probability) / len(classes)), distractor_probability]
        if transition == "continuous":  # the motion must change, or there would be no boundary at all
            weights[options.index(label)] = 0.0
        label = options[int(rng.choice(len(options), p=weights / weights.sum()))]
        plan.append(PlannedSegment(start, start + length, label, domain, shot, transition))
        start += length
    return plan


@dataclass
class _Sprite:
    x: float
    y: float
    scale: float
    angle: float
    radius: float


class _Shot:
    """Everything one shot keeps from frame to frame: look, camera, field distractors, the sprite."""

    def __init__(self, domain: str, style: GroupStyle, rng: np.random.Generator, width: int, height: int, fps: float):
        self.domain, self.style, self.rng, self.width, self.height = domain, style, rng, width, height
        self.margin = CAMERA_MARGIN if domain == "field" else 0
        canvas_h, canvas_w = height + 2 * self.margin, width + 2 * self.margin
        self.background = _background(style, canvas_h, canvas_w)
        self.ys_grid, self.xs_grid = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
        self.sprite = _Sprite(self.margin + style.anchor[0] * width, self.margin + style.anchor[1] * height, 1.0,
                              style.start_angle, style.sprite_radius * min(width, height) * rng.uniform(0.9, 1.1))
        self.frame, self.fps = 0, fps
        self.pan = rng.random() < 0.5
        self.pan_direction, self.pan_period_s = rng.uniform(0, 2 * math.pi), rng.uniform(4.0, 10.0)
        self.walkers: list[dict] = []
        if domain == "field":
            for _ in range(int(rng.integers(1, 3))):
                self.walkers.append({
                    "xy": rng.uniform([self.margin, self.margin], [self.margin + width, self.margin + height]),
                    "shape": FIELD_SHAPES[int(rng.integers(len(FIELD_SHAPES)))],
                    "rgb": _hsv_rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.6), rng.uniform(0.4, 0.9)),
                    "radius": self.sprite.radius * rng.uniform(0.35, 0.55), "angle": rng.uniform(0, 2 * math.pi)})

    def view(self) -> np.ndarray:
        """The visible part of the background (what a cut changes)."""
        m = self.margin
        return self.background[m:m + self.height, m:m + self.width]

    def _camera(self) -> tuple[float, float]:
        if self.domain != "field":
            return 0.0, 0.0
        if self.pan:  # a slow sway that never leaves the margin
            swing = (self.margin - 2) * math.sin(2 * math.pi * self.frame / (self.pan_period_s * self.fps))
            return swing * math.cos(self.pan_direction), swing * math.sin(self.pan_direction)
        return tuple(self.rng.uniform(-2.5, 2.5, size=2))

    def render(self, x: float, y: float, scale: float, angle: float) -> np.ndarray:
        """Draw one frame with the sprite at (x, y), advancing the camera and field distractors."""
        canvas = self.background.copy()
        m = self.margin
        for walker in self.walkers:
            walker["xy"] = np.clip(walker["xy"] + self.rng.normal(0, 1.5, size=2), [m, m],
                                   [m + self.width, m + self.height])
            _paint(canvas, self.xs_grid, self.ys_grid, walker["shape"], walker["rgb"], *walker["xy"],
                   walker["radius"], walker["angle"], hand=False)
        _paint(canvas, self.xs_grid, self.ys_grid, self.style.shape, self.style.sprite_rgb, x, y,
               self.sprite.radius * scale, angle)
        dx, dy = self._camera()
        top, left = int(round(m + dy)), int(round(m + dx))
        self.frame += 1
        self.sprite.x, self.sprite.y, self.sprite.scale, self.sprite.angle = x, y, scale, angle
        return canvas[top:top + self.height, left:left + self.width].clip(0, 255).astype(np.uint8)

    def _inside(self, values: np.ndarray, low: float, high: float) -> np.ndarray:
        """Shift a whole path so it stays in [low, high] (centred when it is wider)."""
        if values.max() - values.min() > high - low:
            return values + (low + high) / 2 - (values.max() + values.min()) / 2
        return values + max(0.0, low - values.min()) - max(0.0, values.max() - high)

    def motion(self, label: str, n_frames: int, cycle_frames: int) -> Iterator[np.ndarray]:
        """Frames of ``label`` repeated in cycles, each continuing from the sprite's last position."""
        m, w, h = self.margin, self.width, self.height
        done = 0
        while done < n_frames:
            count = min(cycle_frames, n_frames - done)
            progress = np.linspace(0.0, 1.0, cycle_frames)[:count]
            sprite = self.sprite
            xs, ys, scale, angle = _motion_path(label, self.rng, progress, w, h, sprite.x, sprite.y, sprite.angle)
            xs = self._inside(xs + sprite.x - xs[0], m + 0.1 * w, m + 0.9 * w)
            ys = self._inside(ys + sprite.y - ys[0], m + 0.1 * h, m + 0.9 * h)
            for index in range(count):
                yield self.render(xs[index], ys[index], scale[index], angle[index])
            done += count

    def drift(self, n_frames: int) -> Iterator[np.ndarray]:
        """Distractor footage: the sprite wanders slowly at random (no labelled motion)."""
        velocity = np.zeros(2)
        low = np.array([self.margin + 0.1 * self.width, self.margin + 0.1 * self.height])
        high = low + 0.8 * np.array([self.width, self.height])
        for _ in range(n_frames):
            velocity = 0.9 * velocity + self.rng.normal(0, 0.15, size=2)
            xy = np.clip(np.array([self.sprite.x, self.sprite.y]) + velocity, low, high)
            yield self.render(xy[0], xy[1], 1.0, self.sprite.angle + self.rng.normal(0, 0.01))


def _new_shot(domain: str, rng: np.random.Generator, width: int, height: int, fps: float,
              previous: _Shot | None) -> _Shot:
    """A shot with a look that differs visibly from ``previous`` (a few redraws at most)."""
    shot = _Shot(domain, draw_group_style(domain, rng), rng, width, height, fps)
    for _ in range(20):
        if previous is None or np.abs(shot.view() - previous.view()).mean() >= MIN_CUT_CHANGE:
            break
        shot = _Shot(domain, draw_group_style(domain, rng), rng, width, height, fps)
    return shot


def render_long_video(plan: Sequence[PlannedSegment], rng: np.random.Generator, fps: float,
                      size: tuple[int, int] = (160, 120), cycle_s: float = 2.0) -> Iterator[np.ndarray]:
    """Yield the frames of ``plan`` one by one, (height, width, 3) uint8 RGB."""
    width, height = int(size[0]), int(size[1])
    cycle_frames = max(2, int(round(cycle_s * fps)))
    shot: _Shot | None = None
    for segment in plan:
        if segment.transition != "continuous" or shot is None:
            shot = _new_shot(segment.domain, rng, width, height, fps, shot)
        n_frames = segment.end_frame - segment.start_frame
        if segment.label == DISTRACTOR_LABEL:
            yield from shot.drift(n_frames)
        else:
            yield from shot.motion(segment.label, n_frames, cycle_frames)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ParameterError(f"size must be (width, height); got {size!r}")
    return (check_scalar(size[0], "size width", int, min_value=16),
            check_scalar(size[1], "size height", int, min_value=16))


def write_csv(path: Path, columns: Sequence[str], rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def range_starts(stamps: np.ndarray, fps: float, start_s: float, end_s: float, n_frames: int) -> np.ndarray:
    """Indices of the frames a run of ``n_frames`` can start at inside the segment ``[start_s, end_s)``.

    A segment exactly ``n_frames`` long can have none by the strict test when the file's time base rounded its
    timestamps up (36.79166794 for 36.791666...): then the test allows half a frame. (Strict first, so that
    the query lists drawn before this fallback existed stay the same.)"""
    stamps = np.asarray(stamps, dtype=np.float64)
    for slack in (1e-9, 0.5 / fps):
        starts = np.flatnonzero((stamps >= start_s - slack) & (stamps + n_frames / fps <= end_s + slack))
        if len(starts):
            return starts
    return starts


def generate_long_videos(out_dir: str | os.PathLike, n_videos: int = 4, duration_s: float = 180.0, seed: int = 0,
                         fps: float = 24.0, size: tuple[int, int] = (160, 120), min_segment_s: float = 2.0,
                         max_segment_s: float = 20.0, cut_probability: float = 0.5,
                         distractor_probability: float = 0.15, cycle_s: float = 2.0,
                         domains: Sequence[str] = DOMAINS, progress: bool = True) -> Path:
    """Write ``n_videos`` long videos, ``ground_truth.csv`` and ``cuts.csv`` under ``out_dir``; return the GT path.

    Deterministic from ``seed``. ``size`` is (width, height). ``domains`` restricts the looks
    (e.g. ``("studio",)`` for a static camera). Video paths in both CSVs are relative to ``out_dir``.
    """
    n_videos = check_scalar(n_videos, "n_videos", int, min_value=1)
    duration_s = check_scalar(duration_s, "duration_s", float, min_value=0, include_min=False)
    seed = check_scalar(seed, "seed", int, min_value=0)
    fps = check_scalar(fps, "fps", float, min_value=1, max_value=240)
    width, height = _check_size(size)
    min_segment_s = check_scalar(min_segment_s, "min_segment_s", float, min_value=0, include_min=False)
    max_segment_s = check_scalar(max_segment_s, "max_segment_s", float, min_value=min_segment_s)
    cut_probability = check_scalar(cut_probability, "cut_probability", float, min_value=0, max_value=1)
    distractor_probability = check_scalar(distractor_probability, "distractor_probability", float,
                                          min_value=0, max_value=1, include_max=False)
    cycle_s = check_scalar(cycle_s, "cycle_s", float, min_value=0, include_min=False)
    domains = tuple(check_choice(d, "domain", DOMAINS) for d in domains)
    if not domains:
        raise ParameterError(f"domains must name at least one of {DOMAINS}")
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth, cuts = [], []
    for video in tqdm(range(n_videos), desc="long videos", unit="video", disable=not progress):
        plan = plan_long_video(np.random.default_rng([seed, video, 0]), duration_s, fps, min_segment_s,
                               max_segment_s, cut_probability, distractor_probability, domains=domains)
        name = f"long_{video:03d}.mp4"
        write_video(out_dir / name, render_long_video(plan, np.random.default_rng([seed, video, 1]), fps,
                                                      (width, height), cycle_s), fps)
        for segment in plan:
            start_s, end_s = segment.start_frame / fps, segment.end_frame / fps
            truth.append({"video": name, "start_s": start_s, "end_s": end_s, "label": segment.label,
                          "domain": segment.domain, "group": f"{Path(name).stem}_shot{segment.shot:02d}",
                          "transition": segment.transition})
            if segment.transition == "cut":
                cuts.append({"video": name, "time_s": start_s})
    write_csv(out_dir / "cuts.csv", CUT_COLUMNS, cuts)
    return write_csv(out_dir / "ground_truth.csv", GROUND_TRUTH_COLUMNS, truth)


__all__ = ["range_starts", "GROUND_TRUTH_COLUMNS", "CUT_COLUMNS", "QUERY_COLUMNS", "TRANSITIONS", "DISTRACTOR_LABEL", "PlannedSegment",
           "plan_long_video", "render_long_video", "generate_long_videos", "write_csv"]
