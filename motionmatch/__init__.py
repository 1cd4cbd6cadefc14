"""MotionMatch: find footage whose motion is like a query's, and say where.

The pipeline, one folder per stage (each imports only the folders before it)::

    video -> data -> encoders -> extract -> index -> search -> evaluation -> report
    (metrics and refine are used along the way; cli drives them all)

The verbs a user needs, from the top (they load their stage when first used, so ``import motionmatch`` is cheap)::

    import motionmatch as mm
    mm.extract("data/raw/sample")                    # videos -> embeddings table (resumable)
    mm.index()                                       # the table -> Milvus (idempotent)
    mm.search("query.mp4").hit_records(10)           # clips whose motion is like the query's
    mm.search_range(store, "long.mp4", 12.0, 18.0)   # where, in all the footage, this motion happens
    mm.evaluate()                                    # retrieval metrics with 95% CIs
    mm.MotionStore(), mm.load_run()                  # the store and a run's table, for your own steps
"""
from __future__ import annotations

__version__ = "0.1.0"

# extract, index and search are the stage folders, each callable as its verb (motionmatch.stages)
from . import extract, index, search  # noqa: E402
from .evaluation import evaluate  # noqa: E402
from .extract import Run, load_run  # noqa: E402
from .index import MotionStore  # noqa: E402
from .search import SegmentSearchConfig, search_range  # noqa: E402

__all__ = ["__version__", "extract", "load_run", "Run", "index", "MotionStore", "search", "search_range",
           "SegmentSearchConfig", "evaluate"]
