"""The generated videos the benchmarks share, made in code (nothing downloaded).

* :func:`texture_video`: a panning smooth-noise texture at any size (decoding, memory), cached in
  ``bench/out/videos``: content moves every frame, so no frame is trivial to decode;
* :func:`motion_videos`: labelled synthetic motion clips (``motionmatch.data.synthetic``; embedding), with
  :func:`manifest_for` the manifest the pipeline reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .run import OUT_DIR

VIDEO_DIR = OUT_DIR / "videos"


def texture_video(name: str, size: tuple[int, int], num_frames: int, fps: float = 30) -> Path:
    """A panning smooth-noise H.264 video (``write_video``'s defaults), cached as ``bench/out/videos/NAME_Nf.mp4``.

    Frames are streamed into ``write_video`` one at a time, so even 1080p keeps memory flat.
    """
    path = VIDEO_DIR / f"{name}_{num_frames}f.mp4"
    if path.exists() and path.stat().st_size > 0:
        return path
    import cv2

    from motionmatch.video import write_video

    width, height = size
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, ((height + num_frames) // 16 + 2, (width + 2 * num_frames) // 16 + 2, 3),
                          dtype=np.uint8)
    texture = cv2.resize(coarse, (coarse.shape[1] * 16, coarse.shape[0] * 16), interpolation=cv2.INTER_CUBIC)
    frames = (texture[i // 2:i // 2 + height, 2 * i:2 * i + width] for i in range(num_frames))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.mp4")
    write_video(temporary, frames, fps=fps)
    temporary.replace(path)
    return path


def motion_videos(folder: Path, count: int, size: tuple[int, int] = (160, 120), num_frames: int = 48,
                  fps: float = 24, seed: int = 0) -> list[Path]:
    """``count`` labelled synthetic H.264 videos (motion classes and domains in turn) written into ``folder``."""
    from motionmatch.data import DOMAINS, MOTION_CLASSES, render_motion_clip
    from motionmatch.video import write_video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        motion = MOTION_CLASSES[index % len(MOTION_CLASSES)]
        domain = DOMAINS[(index // len(MOTION_CLASSES)) % len(DOMAINS)]
        path = folder / f"{index:04d}_{motion}_{domain}.mp4"
        write_video(path, render_motion_clip(motion, domain, rng, num_frames=num_frames, size=size), fps=fps)
        paths.append(path)
    return paths


def manifest_for(paths: Sequence[Path]):
    """A manifest DataFrame for :func:`motion_videos` (label = the motion in the file name)."""
    import pandas as pd

    return pd.DataFrame({"path": [str(p) for p in paths], "label": [p.stem.split("_", 1)[1] for p in paths],
                         "domain": "bench", "group": [p.stem for p in paths], "split": ""})


__all__ = ["VIDEO_DIR", "texture_video", "motion_videos", "manifest_for"]
