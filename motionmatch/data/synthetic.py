"""Labelled synthetic motion videos, written as real H.264 ``.mp4`` files plus ``manifest.csv``.

Each video shows a sprite performing one of :data:`MOTION_CLASSES` in one of two :data:`DOMAINS`:

* ``"studio"``: plain background, static camera, one sprite family (discs in warm colours);
* ``"field"``: textured background (smooth noise or stripes), other sprite shapes (square,
  triangle, cross, ring) in cool colours, a panning or jittering camera, and 1-2 distractor
  objects moving at random.

Every sprite carries a darker "clock hand" bar so that spinning (``rotate``) is visible.

Videos are organised in *groups* like UCF101's: the videos of one group share background,
sprite shape, colour and start position (near-duplicates), and differ in motion magnitude,
phase, camera motion and distractors. Evaluations must therefore exclude a query's own group.
The ``split`` column puts the last group of each class and domain in ``"test"``, the others in
``"train"``; with a single group per class and domain everything is ``"train"``.

Everything is deterministic from the seed: the same seed gives identical decoded frames
(``libx264`` runs single-threaded so the bitstream does not depend on the core count).
"""
from __future__ import annotations

import colorsys
import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..video.write import write_video
from ..table import MANIFEST_COLUMNS
from ..validation import check_scalar

MOTION_CLASSES: tuple[str, ...] = (
    "translate_left", "translate_right", "translate_up", "translate_down",
    "orbit_cw", "orbit_ccw", "zoom_in", "zoom_out",
    "rotate",  # the sprite spins in place (either direction)
    "oscillate",  # back and forth along a fixed axis
)
DOMAINS: tuple[str, ...] = ("studio", "field")

FIELD_SHAPES = ("square", "triangle", "cross", "ring")
CAMERA_MARGIN = 10  # pixels of extra canvas on each side, room for the field camera to move


# ----------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class GroupStyle:
    """What the videos of one group share (their near-duplicate look)."""

    shape: str  # sprite shape: "disc" (studio) or one of FIELD_SHAPES
    sprite_rgb: tuple[int, int, int]  # sprite colour
    background: str  # "plain", "noise" or "stripes"
    background_rgb: tuple[tuple[int, int, int], tuple[int, int, int]]  # two background colours
    texture_seed: int  # seed of the noise texture / stripe geometry
    anchor: tuple[float, float]  # motion centre as fractions of (width, height)
    sprite_radius: float  # sprite radius as a fraction of min(width, height)
    start_angle: float  # sprite orientation at frame 0, radians


def _hsv_rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return int(red * 255), int(green * 255), int(blue * 255)


def draw_group_style(domain: str, rng: np.random.Generator) -> GroupStyle:
    """Draw the shared look of a group for ``domain``."""
    _check_domain(domain)
    if domain == "studio":
        shape = "disc"
        sprite = _hsv_rgb(rng.uniform(-0.03, 0.10), rng.uniform(0.7, 0.95), rng.uniform(0.75, 0.95))
        grey = int(rng.integers(185, 235))
        background, colours = "plain", ((grey, grey, grey), (grey, grey, grey))
    else:
        shape = FIELD_SHAPES[int(rng.integers(len(FIELD_SHAPES)))]
        sprite = _hsv_rgb(rng.uniform(0.30, 0.72), rng.uniform(0.6, 0.95), rng.uniform(0.65, 0.95))
        background = ("noise", "stripes")[int(rng.integers(2))]
        hue = rng.uniform(0.0, 1.0)
        colours = (_hsv_rgb(hue, rng.uniform(0.1, 0.4), rng.uniform(0.25, 0.45)),
                   _hsv_rgb(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.1, 0.4), rng.uniform(0.55, 0.8)))
    return GroupStyle(shape=shape, sprite_rgb=sprite, background=background, background_rgb=colours,
                      texture_seed=int(rng.integers(2**31)),
                      anchor=(float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.4, 0.6))),
                      sprite_radius=float(rng.uniform(0.10, 0.14)), start_angle=float(rng.uniform(0, 2 * math.pi)))


def _background(style: GroupStyle, height: int, width: int) -> np.ndarray:
    """The (height, width, 3) float32 background canvas of a group."""
    low, high = (np.asarray(c, dtype=np.float32) for c in style.background_rgb)
    if style.background == "plain":
        return np.broadcast_to(low, (height, width, 3)).copy()
    texture_rng = np.random.default_rng(style.texture_seed)
    if style.background == "noise":
        import cv2

        coarse = texture_rng.random((max(2, height // 8), max(2, width // 8))).astype(np.float32)
        weight = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    else:
        angle, period = texture_rng.uniform(0, math.pi), texture_rng.uniform(10, 22)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        weight = 0.5 + 0.5 * np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period)
    return low + weight[..., None] * (high - low)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-mask of a unit-size shape in its own (rotated, scaled) coordinates."""
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if shape == "triangle":
        return (v <= 0.7) & (v >= -1.0 + 1.7 * np.abs(u) * 1.15)
    if shape == "cross":
        return ((np.abs(u) <= 1.0) & (np.abs(v) <= 0.35)) | ((np.abs(v) <= 1.0) & (np.abs(u) <= 0.35))
    if shape == "ring":
        radius2 = u * u + v * v
        return (radius2 <= 1.0) & (radius2 >= 0.3)
    raise ParameterError(f"unknown sprite shape {shape!r}")


def _paint(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, shape: str, rgb, centre_x: float,
           centre_y: float, radius: float, angle: float, hand: bool = True) -> None:
    """Paint one sprite (with its darker orientation bar when ``hand``) into ``canvas`` in place."""
    reach = int(math.ceil(radius * 1.5)) + 1
    top, bottom = max(0, int(centre_y) - reach), min(canvas.shape[0], int(centre_y) + reach + 1)
    left, right = max(0, int(centre_x) - reach), min(canvas.shape[1], int(centre_x) + reach + 1)
    if top >= bottom or left >= right:
        return
    dx, dy = xs[top:bottom, left:right] - centre_x, ys[top:bottom, left:right] - centre_y
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = (dx * cos + dy * sin) / radius, (-dx * sin + dy * cos) / radius
    inside = _shape_mask(shape, u, v)
    window = canvas[top:bottom, left:right]
    window[inside] = rgb
    if hand:
        bar = inside & (u >= 0.05) & (np.abs(v) <= 0.28)
        window[bar] = np.asarray(rgb, dtype=np.float32) * 0.35


def _motion_path(motion: str, rng: np.random.Generator, progress: np.ndarray, width: int, height: int,
                 anchor_x: float, anchor_y: float, angle0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame sprite centre x, y, scale and angle for ``motion`` (magnitudes drawn from ``rng``)."""
    count = len(progress)
    xs, ys = np.full(count, anchor_x), np.full(count, anchor_y)
    scale, angle = np.ones(count), np.full(count, angle0)
    small = min(width, height)
    if motion.startswith("translate_"):
        extent = rng.uniform(0.30, 0.55) * (width if motion in ("translate_left", "translate_right") else height)
        offset = (progress - 0.5) * extent
        if motion == "translate_left":
            xs = anchor_x - offset
        elif motion == "translate_right":
            xs = anchor_x + offset
        elif motion == "translate_up":
            ys = anchor_y - offset
        else:
            ys = anchor_y + offset
    elif motion in ("orbit_cw", "orbit_ccw"):
        radius = rng.uniform(0.18, 0.30) * small
        turns = rng.uniform(0.6, 1.1) * (1 if motion == "orbit_cw" else -1)  # y points down: +angle is clockwise
        phase = rng.uniform(0, 2 * math.pi) + 2 * math.pi * turns * progress
        xs, ys = anchor_x + radius * np.cos(phase), anchor_y + radius * np.sin(phase)
    elif motion in ("zoom_in", "zoom_out"):
        factor = rng.uniform(1.8, 2.6)
        growth = factor ** progress
        scale = 0.7 * (growth if motion == "zoom_in" else factor / growth)
    elif motion == "rotate":
        turns = rng.uniform(0.6, 1.4) * rng.choice([-1.0, 1.0])
        angle = angle0 + 2 * math.pi * turns * progress
    elif motion == "oscillate":
        axis = rng.uniform(0, math.pi)
        amplitude = rng.uniform(0.12, 0.25) * small
        cycles = rng.uniform(1.5, 3.0)
        swing = amplitude * np.sin(2 * math.pi * cycles * progress)
        xs, ys = anchor_x + swing * math.cos(axis), anchor_y + swing * math.sin(axis)
    else:
        raise ParameterError(f"unknown motion {motion!r}; use one of {MOTION_CLASSES}")
    return xs, ys, scale, angle


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ParameterError(f"unknown domain {domain!r}; use one of {DOMAINS}")


def render_motion_clip(motion: str, domain: str, rng: np.random.Generator, num_frames: int = 48,
                       size: tuple[int, int] = (160, 120), style: GroupStyle | None = None) -> np.ndarray:
    """Render one labelled motion clip -> (num_frames, height, width, 3) uint8 RGB.

    ``size`` is (width, height). ``style`` is the group's shared look; drawn from ``rng`` when None.
    Motion magnitudes, phase, camera motion and distractors are drawn from ``rng``.
    """
    if motion not in MOTION_CLASSES:
        raise ParameterError(f"unknown motion {motion!r}; use one of {MOTION_CLASSES}")
    _check_domain(domain)
    width, height = int(size[0]), int(size[1])
    if num_frames < 1 or width < 8 or height < 8:
        raise ParameterError(f"num_frames must be >= 1 and size >= (8, 8); got num_frames={num_frames}, size={size}")
    style = style or draw_group_style(domain, rng)
    margin = CAMERA_MARGIN if domain == "field" else 0
    canvas_h, canvas_w = height + 2 * margin, width + 2 * margin
    background = _background(style, canvas_h, canvas_w)
    ys_grid, xs_grid = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    progress = np.linspace(0.0, 1.0, num_frames)
    jitter = rng.uniform(-0.03, 0.03, size=2)  # same group, slightly different start
    anchor_x = margin + (style.anchor[0] + jitter[0]) * width
    anchor_y = margin + (style.anchor[1] + jitter[1]) * height
    xs, ys, scale, angle = _motion_path(motion, rng, progress, width, height, anchor_x, anchor_y, style.start_angle)
    radius = style.sprite_radius * min(width, height) * rng.uniform(0.9, 1.1)

    camera = np.zeros((num_frames, 2))
    distractors: list[dict] = []
    if domain == "field":
        if rng.random() < 0.5:  # slow pan, much slower than the sprite's motion
            direction = rng.uniform(0, 2 * math.pi)
            camera = np.outer(progress - 0.5, [math.cos(direction), math.sin(direction)]) * rng.uniform(4, 2 * margin - 2)
        else:  # hand-held jitter
            camera = rng.uniform(-2.5, 2.5, size=(num_frames, 2))
        for _ in range(int(rng.integers(1, 3))):
            steps = rng.normal(0, 1.5, size=(num_frames, 2)).cumsum(axis=0)
            start = rng.uniform([margin, margin], [margin + width, margin + height])
            path = start + steps
            path[:, 0] = np.clip(path[:, 0], margin, margin + width)
            path[:, 1] = np.clip(path[:, 1], margin, margin + height)
            distractors.append({"path": path, "shape": FIELD_SHAPES[int(rng.integers(len(FIELD_SHAPES)))],
                                "rgb": _hsv_rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.6), rng.uniform(0.4, 0.9)),
                                "radius": radius * rng.uniform(0.35, 0.55), "angle": rng.uniform(0, 2 * math.pi)})

    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        canvas = background.copy()
        for thing in distractors:
            _paint(canvas, xs_grid, ys_grid, thing["shape"], thing["rgb"], *thing["path"][index],
                   thing["radius"], thing["angle"], hand=False)
        _paint(canvas, xs_grid, ys_grid, style.shape, style.sprite_rgb, xs[index], ys[index],
               radius * scale[index], angle[index])
        top = int(round(margin + camera[index, 1]))
        left = int(round(margin + camera[index, 0]))
        frames[index] = canvas[top:top + height, left:left + width].clip(0, 255).astype(np.uint8)
    return frames


# ----------------------------------------------------------------------------- the sample dataset
def generate_sample_dataset(out_dir: str | os.PathLike, seed: int = 0, videos_per_class_per_domain: int = 32,
                            groups_per_class_per_domain: int = 16, num_frames: int = 48, fps: float = 24,
                            size: tuple[int, int] = (160, 120), progress: bool = True) -> Path:
    """Write the labelled synthetic motion videos under ``out_dir`` and return its ``manifest.csv``.

    Writes ``len(MOTION_CLASSES) * len(DOMAINS) * videos_per_class_per_domain`` videos to
    ``out_dir/<domain>/<label>/``; video ``v`` of a class and domain belongs to group
    ``v % groups_per_class_per_domain``. ``size`` is (width, height); odd sizes are padded to even.
    Manifest paths are relative to ``out_dir``.
    """
    for name, value in (("videos_per_class_per_domain", videos_per_class_per_domain),
                        ("groups_per_class_per_domain", groups_per_class_per_domain), ("num_frames", num_frames)):
        check_scalar(value, name, int, min_value=1)
    check_scalar(fps, "fps", float, min_value=0, include_min=False)
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups_used = min(groups_per_class_per_domain, videos_per_class_per_domain)
    jobs = [(label_index, label, domain_index, domain, video)
            for domain_index, domain in enumerate(DOMAINS)
            for label_index, label in enumerate(MOTION_CLASSES)
            for video in range(videos_per_class_per_domain)]
    rows = []
    for label_index, label, domain_index, domain, video in tqdm(jobs, desc="synthetic videos", unit="video",
                                                                disable=not progress):
        group = video % groups_used
        style = draw_group_style(domain, np.random.default_rng([seed, domain_index, label_index, group, 0]))
        rng = np.random.default_rng([seed, domain_index, label_index, group, 1 + video])
        frames = render_motion_clip(label, domain, rng, num_frames=num_frames, size=size, style=style)
        relative = Path(domain) / label / f"{label}_{domain}_g{group}_v{video:02d}.mp4"
        write_video(out_dir / relative, frames, fps)
        split = "test" if groups_used > 1 and group == groups_used - 1 else "train"
        rows.append({"path": relative.as_posix(), "label": label, "domain": domain,
                     "group": f"{domain}_{label}_g{group}", "split": split})
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


__all__ = ["MOTION_CLASSES", "DOMAINS", "GroupStyle", "draw_group_style", "render_motion_clip",
           "generate_sample_dataset"]
