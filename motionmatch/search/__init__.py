"""Search: find where, in the indexed footage, a query's motion happens.

* :func:`search_range` (:mod:`~motionmatch.search.range`): a query file's time range -> window hits and
  segments (time ranges with scores and their supporting hits), every setting in one
  :class:`SegmentSearchConfig` (:mod:`~motionmatch.search.config`);
* :mod:`~motionmatch.search.align`: window hits -> segments (temporal network, DTW, Hough; growth);
* :func:`search`: the plain clip search of a whole query file, on the configured store.
"""
from ..stages import make_callable
from .align import ALIGNERS, DEFAULT_ALIGNER, Segment, Window, WindowHit, align, extend_segments, merge_window_hits
from .config import (DEFAULT_COPY_LEVEL, DEFAULT_EXTEND_MARGIN, DEFAULT_RAW_THRESHOLD, DEFAULT_Z_THRESHOLD,
                     SegmentSearchConfig)
from .query import embed_plans
from .range import SearchResult, own_videos, search, search_range, search_vectors

__all__ = ["ALIGNERS", "DEFAULT_ALIGNER", "Segment", "Window", "WindowHit", "align", "extend_segments",
           "merge_window_hits", "DEFAULT_COPY_LEVEL", "DEFAULT_EXTEND_MARGIN", "DEFAULT_RAW_THRESHOLD",
           "DEFAULT_Z_THRESHOLD", "SegmentSearchConfig", "SearchResult", "embed_plans", "own_videos", "search",
           "search_range", "search_vectors"]

make_callable(__name__, search)  # `motionmatch.search(...)` calls search(); the folder stays a module
