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
    mm.extract("long/", windows=mm.WindowSpec())     # dense windows over long videos (then mm.index, mm.search)
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# extract, index and search are the stage folders, each callable as its verb (motionmatch.stages); they and the
# other names load when first used, so `import motionmatch` stays cheap (numpy, pandas and torch are not loaded)
_LAZY = {"extract": None, "index": None, "search": None, "evaluate": "evaluation", "load_run": "extract",
         "Run": "extract", "MotionStore": "index", "search_range": "search", "SegmentSearchConfig": "search",
         "WindowSpec": "video"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        folder = _LAZY[name]
        module = importlib.import_module(f".{folder or name}", __name__)
        return module if folder is None else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
