"""Extraction: videos -> an embeddings table (one parquet part per video or chunk), resumable, nothing lost.

* :func:`extract` is the one entry point (``motionmatch extract`` calls it); :func:`load_run` reads a run back;
* :mod:`~motionmatch.extract.local` embeds on this machine, :mod:`~motionmatch.extract.ray_data` on a Ray
  cluster; both keep their books with :mod:`~motionmatch.extract.parts` (parts, plans, chunks,
  ``failures.csv``), so either resumes the other's folder;
* :mod:`~motionmatch.extract.estimate` turns the first video's time into an estimated total.
"""
from ..stages import make_callable
from .estimate import ExtractionEstimate
from .local import extract_embeddings
from .parts import ExtractSummary
from .run import Run, encoder_caveat, extract, load_run
from .workers import default_decode_workers, parse_workers

__all__ = ["ExtractionEstimate", "extract_embeddings", "ExtractSummary", "Run", "encoder_caveat", "extract",
           "load_run", "default_decode_workers", "parse_workers"]

make_callable(__name__, extract)  # `motionmatch.extract(...)` calls extract(); the folder stays a module
