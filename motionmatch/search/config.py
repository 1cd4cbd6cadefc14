"""How a time-range search runs: one frozen :class:`SegmentSearchConfig`, checked once, passed whole.

``motionmatch search`` / ``evaluate --segments`` build it with :meth:`SegmentSearchConfig.from_args`, the API
and notebooks with keywords, the benches from its fields; :func:`motionmatch.search.search_range`,
:func:`~motionmatch.search.range.search_vectors` and :func:`motionmatch.evaluation.evaluate_search` take it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError
from ..refine.zscore import GALLERY
from ..validation import check_choice, check_scalar
from .align import ALIGNERS, DEFAULT_ALIGNER

# standard deviations above a query window's mean cosine to the gallery. Measured on the tests' long videos
# (FlowEncoder, 12 copy + 12 same-motion queries, evaluate_search at each threshold; issue-11 report): segment µAP over
# both kinds 0.72 at z >= 0 and 0.71 at 0.5, against 0.53 at 1.0 (same-motion recall falls) and 0.67 for raw cosine
DEFAULT_Z_THRESHOLD = 0.0
DEFAULT_RAW_THRESHOLD = 0.5  # cosine, when scores are not calibrated
# align.extend_segments: margin (raw cosine; None: segments stay as aligned) and the copy level (an aligned
# segment whose windows are this close to the query is a copy and is not grown). Chosen on the tuning gallery of
# bench/bench_localize.py (seed 0, 8 x 60 s, 30 copy + 30 same-motion queries; `--seed 0 --sweep`) by copy
# R1@tIoU0.7 + same-motion R1@tIoU0.5, with coverage scoring: 0.57 + 0.33 with growth against
# 0.63 + 0.17 without (median same-motion boundary error 1.1 s against 3.8 s); margin 0.05 or copy level 0.95 lower.
DEFAULT_EXTEND_MARGIN = 0.03
DEFAULT_COPY_LEVEL = 0.97
DEFAULT_COPY_THRESHOLD = 0.5  # a verified copy is more likely a copy than not
# a query range split at shot cuts is decoded once and held for its cuts and its windows when its frames take at
# most this (MB, RGB at the file's size: a minute of 640x360 at 24 fps is 0.95 GB); beyond, it is decoded twice
DEFAULT_QUERY_BUFFER_MB = 1024.0
DEFAULT_SNAP_S = 8.0  # seconds a same-motion end may move out to a change of the reference (changes.bound_to_changes)
# a video's same-motion segments between the same two changes are joined when at most this far apart
# (changes.join_moments): far enough for an aligner's gap inside one moment (8.5 s on seed 3), near enough that a
# change the detector missed in a long shot does not join two occurrences minutes apart
DEFAULT_JOIN_GAP_S = 16.0


@dataclass(frozen=True)
class SegmentSearchConfig:
    """Every setting of a time-range search (the query file, range, filters and encoder are per call)."""

    k: int = 10  # hits per query window, and segments returned (unless max_segments)
    segments: bool = True  # False: stop after the window hits
    calibration: Any = GALLERY  # None (raw cosine), "gallery" (z-scores against the collection) or a fitted whitening
    threshold: float | None = None  # lowest window score a segment keeps; None: 0 z-score, or 0.5 raw cosine
    n_candidates: int = 10  # videos (most votes over the query windows' top-k) aligned into segments
    aligner: str = DEFAULT_ALIGNER  # motionmatch.search.align.ALIGNERS
    min_hits: int = 2  # aligned windows a segment needs
    max_segments: int | None = None  # None: k
    group_by_video: bool = False  # one hit per video and query window (Milvus group_by)
    fetch_windows: bool = True  # fetch the candidates' windows; False aligns the Milvus hits alone (faster)
    query_phases: int | None = None  # query windows shifted by 1..n-1 frames; None: frame_stride on dense collections
    extend_margin: float | None = DEFAULT_EXTEND_MARGIN  # grow segments while the motion goes on; None: as aligned
    copy_level: float = DEFAULT_COPY_LEVEL  # an aligned segment this close to the query is a copy: never grown
    coverage: bool = True  # score aligned segments by the share of query windows they cover
    split_at_cuts: bool | None = None  # restart query windows at shot cuts; None: when the index's windows are
    batch_size: int = 8  # clips per encoder call for the query
    fine: bool = True  # the fine stage (motionmatch.search.fine) where the collection has a frame store
    copy_threshold: float = DEFAULT_COPY_THRESHOLD  # P(copy) from which a range is reported as a copy
    snap_s: float = DEFAULT_SNAP_S  # same-motion ends move out to a change of the reference within this; 0: never
    join_moments: bool = True  # a video's same-motion segments between the same two changes become one (snap_s > 0)
    join_gap_s: float = DEFAULT_JOIN_GAP_S  # ... when no more than this apart
    query_buffer_mb: float = DEFAULT_QUERY_BUFFER_MB  # decode a query range once for cuts and windows up to this

    def __post_init__(self) -> None:
        for name in ("k", "n_candidates", "min_hits", "batch_size"):
            check_scalar(getattr(self, name), name, int, min_value=1)
        if self.max_segments is not None:
            check_scalar(self.max_segments, "max_segments", int, min_value=1)
        if self.query_phases is not None:
            check_scalar(self.query_phases, "query_phases", int, min_value=1)
        check_choice(self.aligner, "aligner", tuple(ALIGNERS))
        if self.extend_margin is not None:
            check_scalar(self.extend_margin, "extend_margin", float, min_value=0)
        check_scalar(self.copy_level, "copy_level", float, min_value=-1, max_value=1)
        if self.threshold is not None:
            check_scalar(self.threshold, "threshold", float)
        check_scalar(self.copy_threshold, "copy_threshold", float, min_value=0, max_value=1, include_min=False)
        check_scalar(self.snap_s, "snap_s", float, min_value=0)
        check_scalar(self.join_gap_s, "join_gap_s", float, min_value=0)
        check_scalar(self.query_buffer_mb, "query_buffer_mb", float, min_value=0)
        for name in ("segments", "group_by_video", "fetch_windows", "coverage", "fine", "join_moments"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.split_at_cuts is not None and not isinstance(self.split_at_cuts, bool):
            raise ParameterError(f"split_at_cuts must be True, False or None (auto), got {self.split_at_cuts!r}")
        calibration = self.calibration
        if isinstance(calibration, str) and calibration != GALLERY:
            raise ParameterError(f"calibration must be None, {GALLERY!r} or a fitted whitening ScoreCalibration "
                                 f"(`motionmatch calibrate --mode whiten`), got {calibration!r}")
        if calibration is not None and not isinstance(calibration, str) and getattr(calibration, "mode", None) != "whiten":
            raise ParameterError("z-scored segment scores need a PCA-whitening calibration (ScoreCalibration('whiten'), "
                                 "`motionmatch calibrate --mode whiten`), or calibration='gallery'")

    @property
    def score_threshold(self) -> float:
        """The threshold in force: the one given, else 0 z-score (calibrated) or 0.5 raw cosine."""
        if self.threshold is not None:
            return float(self.threshold)
        return DEFAULT_RAW_THRESHOLD if self.calibration is None else DEFAULT_Z_THRESHOLD

    @property
    def segment_limit(self) -> int:
        return self.k if self.max_segments is None else self.max_segments

    def replace(self, **changes: Any) -> "SegmentSearchConfig":
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_args(cls, args) -> "SegmentSearchConfig":
        """From the parsed options of ``motionmatch search`` / ``evaluate --segments`` (``cli.search.add_scoring_args``)."""
        from ..refine.calibrate import ScoreCalibration

        value = args.calibration
        if value in (GALLERY, "none"):
            calibration = GALLERY if value == GALLERY else None
        else:
            calibration = ScoreCalibration.load(value)
            if calibration.mode != "whiten":
                raise ParameterError(f"{value} holds a {calibration.mode!r} calibration; segment z-scores need a "
                                     f"whitening: `motionmatch calibrate --mode whiten --out {value}`, or "
                                     "--calibration gallery")
        options = dict(k=args.k, calibration=calibration, threshold=args.threshold, n_candidates=args.candidates,
                       fetch_windows=not args.hits_only, split_at_cuts=False if args.ignore_cuts else None,
                       extend_margin=None if args.as_aligned else DEFAULT_EXTEND_MARGIN, fine=not args.no_fine,
                       copy_threshold=args.copy_threshold)
        if hasattr(args, "segments") and isinstance(args.segments, bool):  # `search`; `evaluate` always segments
            options["segments"] = args.segments
        if hasattr(args, "one_per_video"):
            options["group_by_video"] = args.one_per_video
        return cls(**options)


__all__ = ["DEFAULT_Z_THRESHOLD", "DEFAULT_RAW_THRESHOLD", "DEFAULT_EXTEND_MARGIN", "DEFAULT_COPY_LEVEL",
           "DEFAULT_COPY_THRESHOLD", "DEFAULT_SNAP_S", "DEFAULT_JOIN_GAP_S", "DEFAULT_QUERY_BUFFER_MB",
           "SegmentSearchConfig"]
