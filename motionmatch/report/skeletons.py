"""Skeletons drawn over frames: what the pose channel saw, camera by camera (notebook 08).

The pose channel (:class:`~motionmatch.encoders.PoseEncoder`) tracks up to ``max_people`` people per clip (pose:v2;
one in pose:v1); drawing their landmarks on the frames shows whom each camera found (on Pose2Sim's Trial_2 two
people are in view, and a camera that finds only one of them shows it) and where nobody was found. The images are JPEG data URIs inside a Plotly figure,
so the code-free HTML report carries them (a few tens of kB each) and needs nothing else to show them.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..errors import ParameterError
from ..validation import check_scalar

# MediaPipe's POSE_CONNECTIONS: the 35 bones between BlazePose's 33 landmarks
SKELETON_EDGES = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
                  (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22),
                  (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30),
                  (29, 31), (30, 32), (27, 31), (28, 32))
LEFT_JOINTS = frozenset((1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))  # the person's left side
RIGHT_JOINTS = frozenset((4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32))
LEFT_COLOUR, RIGHT_COLOUR, CENTRE_COLOUR = (255, 140, 0), (0, 160, 255), (240, 240, 240)  # RGB


@dataclass(frozen=True)
class SkeletonPanel:
    """One drawn frame: the image with the skeleton, its title, and whether a person was found."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    title: str
    found: bool


def draw_skeleton(frame: np.ndarray, pose, min_visibility: float = 0.5, thickness: int = 0) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3 uint8 RGB) with ``pose``'s skeleton drawn (a
    :class:`~motionmatch.encoders.PoseFrame`; nothing drawn when it found nobody). Bones whose two joints are both
    less visible than ``min_visibility`` are left out; the person's left side is orange, the right blue."""
    import cv2

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ParameterError(f"frame must be an (H, W, 3) uint8 RGB array, got shape {frame.shape}, dtype {frame.dtype}")
    image = np.ascontiguousarray(frame.copy())
    if not pose.found:
        return image
    thickness = thickness or max(2, round(max(image.shape[:2]) / 240))
    points = np.asarray(pose.image_landmarks, dtype=np.float64)[:, :2]
    visible = np.asarray(pose.visibility, dtype=np.float64) >= min_visibility
    for start, end in SKELETON_EDGES:
        if not (visible[start] or visible[end]) or not np.isfinite(points[[start, end]]).all():
            continue
        bone = {start, end}
        side = LEFT_COLOUR if bone <= LEFT_JOINTS else RIGHT_COLOUR if bone <= RIGHT_JOINTS else CENTRE_COLOUR
        cv2.line(image, tuple(int(round(v)) for v in points[start]), tuple(int(round(v)) for v in points[end]), side,
                 thickness, cv2.LINE_AA)
    for joint, point in enumerate(points):
        if visible[joint] and np.isfinite(point).all():
            cv2.circle(image, (int(round(point[0])), int(round(point[1]))), thickness + 1, CENTRE_COLOUR, -1,
                       cv2.LINE_AA)
    return image


def skeleton_panels(videos: Sequence[tuple[str, str]] | pd.DataFrame, encoder, frame_index: int = -1,
                    height: int = 320) -> list[SkeletonPanel]:
    """One :class:`SkeletonPanel` per ``(title, video path)`` (or per manifest row: titled "label · domain"): the
    video's frames tracked from its first frame by ``encoder`` (a :class:`~motionmatch.encoders.PoseEncoder`), as
    the pose channel does for a clip, and frame ``frame_index`` (-1: the middle one) drawn, scaled to ``height``."""
    import cv2

    from ..video.decode import probe_video, read_frames

    check_scalar(height, "height", int, min_value=32)
    if isinstance(videos, pd.DataFrame):
        videos = [(f"{row.label} · {row.domain}", row.path) for row in videos.itertuples()]
    panels = []
    for title, path in videos:
        n_frames = probe_video(path).num_frames
        if n_frames < 1:
            raise ParameterError(f"{path} has no frames; re-encode it or leave it out")
        index = n_frames // 2 if frame_index < 0 else min(int(frame_index), n_frames - 1)
        frames = read_frames(path, list(range(index + 1)))
        people = encoder.track_people(frames)  # every person the clip's descriptor pools, as a clip is tracked
        image = frames[index]
        for person in people:
            image = draw_skeleton(image, person[index], encoder.settings.min_visibility)
        scale = height / image.shape[0]
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
        found = any(bool(person[index].found) for person in people)
        panels.append(SkeletonPanel(image, f"{title}" + ("" if found else " (no person)"), found))
    return panels


def image_uri(image: np.ndarray, quality: int = 80) -> str:
    """A JPEG data URI of an RGB image (what a Plotly ``go.Image(source=...)`` shows, and HTML embeds)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", np.asarray(image)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ParameterError("the image could not be encoded as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def skeleton_figure(panels: Sequence[SkeletonPanel], columns: int = 4, title: str = "What the pose channel saw"
                    ) -> go.Figure:
    """The panels in a grid (``columns`` per row), each image embedded as a JPEG."""
    check_scalar(columns, "columns", int, min_value=1)
    if not panels:
        raise ParameterError("no panels to show; give skeleton_panels at least one video")
    rows = -(-len(panels) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[p.title for p in panels], horizontal_spacing=0.01,
                        vertical_spacing=0.06)
    for position, panel in enumerate(panels):
        fig.add_trace(go.Image(source=image_uri(panel.image), hoverinfo="skip"), row=position // columns + 1,
                      col=position % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    height = max(p.image.shape[0] for p in panels)
    fig.update_layout(title=title, height=rows * (height + 50) + 80, margin=dict(l=10, r=10, t=80, b=10))
    return fig


__all__ = ["SKELETON_EDGES", "SkeletonPanel", "draw_skeleton", "skeleton_panels", "image_uri", "skeleton_figure"]
