"""Several people in one clip: one track per person, and the clip's descriptor pooled over them (``pose:v2``).

Why. With one track per clip, the person followed is the detector's best on the first frame, and with two people in
view different cameras follow different people (Pose2Sim's Trial_2: cam03 follows the man, the others the woman),
so the same moment filmed from two sides gets two unrelated vectors. And a clip of one man doing a movement looks
the same as a clip of that man doing it beside someone else (Trial_2's man replays Trial_1's): who else is in view
is part of what was filmed.

How (:func:`track_people`):

1. the first person is found and tracked exactly as ``pose:v1`` does (:meth:`BlazePose.track`: the detector's best
   detection on the first frame, at least ``min_detection_score``, re-detected when lost);
2. on the first frame, every person found so far is blacked out (the box of their landmarks, plus ``MASK_MARGIN`` of
   the frame height) and the detector runs again, taking detections down to ``extra_score`` (0.5; a second person
   behind the first is often only partly visible) whose hip centre is not within ``SAME_PERSON`` ROI widths of a
   found person's; repeated until ``max_people`` are found or none is left; then the same on the clip's middle
   frame (``PoseSettings.person_search_frames``, (0, 0.5)), for a person hidden or out of view at the start;
3. each further person is followed by a tracker of their own, which never re-detects: a lost track ends (it would
   otherwise jump to the first person); one found on a later frame is tracked backwards to the clip's start too.

The clip's descriptor (:func:`pool_people`) is the sum of the people's L2-normalised descriptors, each weighted by
its coverage (the share of the clip's frames it was tracked in), normalised again: one vector, so Milvus searches it
as any other, and a clip of two people is close to a clip of the same two people from another camera whichever was
found first. ``python -m bench.bench_pose`` compared this with the best pair and a symmetric Chamfer score of the two
sets (docs/POSE.md).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MASK_MARGIN = 0.02  # of the frame height, around a found person's landmark box, blacked out before detecting again
SAME_PERSON = 0.25  # a detection whose hip centre lies within this many ROI widths of a found person's is that person
HIPS = (23, 24)


def _hip_centre(pose) -> np.ndarray:
    return (pose.image_landmarks[HIPS[0], :2] + pose.image_landmarks[HIPS[1], :2]) / 2


def _masked(frame: np.ndarray, poses: Sequence) -> np.ndarray:
    """``frame`` with every found person's landmark box (plus the margin) blacked out."""
    out = frame.copy()
    height, width = frame.shape[:2]
    margin = MASK_MARGIN * height
    for pose in poses:
        points = pose.image_landmarks[:, :2]
        x0, y0 = np.floor(np.nanmin(points, axis=0) - margin).astype(int)
        x1, y1 = np.ceil(np.nanmax(points, axis=0) + margin).astype(int)
        out[max(0, y0):min(height, y1), max(0, x0):min(width, x1)] = 0
    return out


def track_people(trackers: Sequence, clip: Sequence[np.ndarray], extra_score: float = 0.5,
                 seed_frames: Sequence[int] = (0,)) -> list[list]:
    """One list of per-frame PoseFrames per person found (at most ``len(trackers)``; ``trackers`` are
    :class:`~motionmatch.encoders.blazepose.BlazePose` instances, one per person). The first list is
    ``trackers[0].track(clip)`` exactly; no person at all gives that one list, with nobody in it. Further people are
    looked for on each of ``seed_frames`` in turn (indices into the clip; one found on a later frame is tracked
    backwards to the start and forwards to the end from there)."""
    people = [trackers[0].track(clip)]
    if len(trackers) == 1 or not len(clip) or not any(pose.found for pose in people[0]):
        return people
    for index in dict.fromkeys(min(max(int(i), 0), len(clip) - 1) for i in seed_frames):
        while len(people) < len(trackers):
            found = [person[index] for person in people if person[index].found]
            if not found:
                break
            tracker = trackers[len(people)]
            candidates = tracker.detect(_masked(clip[index], found), min_score=extra_score)
            hips = [_hip_centre(pose) for pose in found]
            new = [d for d in candidates
                   if all(np.hypot(*(np.asarray(d.keypoints[0]) - hip)) > SAME_PERSON * pose.roi[2]
                          for hip, pose in zip(hips, found))]
            if not new:
                break
            after = tracker.track(clip[index:], detection=new[0], redetect=False)
            before = tracker.track(clip[index::-1], detection=new[0], redetect=False)[::-1][:-1] if index else []
            if not after[0].found:
                break
            people.append([*before, *after])
    return people


def pool_people(described: Sequence[tuple[np.ndarray, float]], no_person: Callable[[], np.ndarray]
                ) -> tuple[np.ndarray, float]:
    """``(vector, coverage)`` of a clip from its people's ``(unit descriptor, coverage)``: the coverage-weighted sum,
    L2-normalised, and the largest coverage; ``no_person()`` and 0.0 when nobody has coverage."""
    kept = [(vector, share) for vector, share in described if share > 0]
    if not kept:
        return no_person(), 0.0
    total = np.sum([share * np.asarray(vector, dtype=np.float64) for vector, share in kept], axis=0)
    norm = float(np.linalg.norm(total))
    if norm == 0 or not np.isfinite(norm):
        return no_person(), 0.0
    return (total / norm).astype(np.float32), float(max(share for _, share in kept))


__all__ = ["MASK_MARGIN", "SAME_PERSON", "track_people", "pool_people"]
