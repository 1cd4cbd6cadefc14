"""The index: embeddings in Milvus (a Milvus Lite ``.db`` file, a server, a cluster), kept in sync with a run.

* :class:`MotionStore` (:mod:`~motionmatch.index.store`): one collection, searched with typed hits; its schema,
  index parameters and filters in :mod:`~motionmatch.index.schema` and :mod:`~motionmatch.index.filters`;
  numpy arrays stored with it in :mod:`~motionmatch.index.arrays`; connecting in :mod:`~motionmatch.index.connection`;
* :func:`index_run` (:mod:`~motionmatch.index.sync`): the one way to index an extraction run (idempotent,
  fingerprint-aware, with the clip spec and the gallery calibration); :func:`index` opens the store for it;
* :mod:`~motionmatch.index.bulk`: BulkWriter files and a server import for millions of rows;
* :mod:`~motionmatch.index.standalone` and :mod:`~motionmatch.index.netns`: the C++ Milvus standalone of the
  ``milvus`` wheel, on loopback only.
"""
from ..stages import make_callable
from .schema import DEFAULT_INDEX_TYPE, Hit, IndexConfig
from .store import MotionStore
from .sync import IndexSummary, index, index_embeddings, index_run

__all__ = ["DEFAULT_INDEX_TYPE", "Hit", "IndexConfig", "MotionStore", "IndexSummary", "index", "index_embeddings",
           "index_run"]

make_callable(__name__, index)  # `motionmatch.index(...)` calls index(); the folder stays a module
