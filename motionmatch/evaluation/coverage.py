"""Clips with nothing to describe: a pose clip with no person in view is left out of the rankings, and said so.

The pose channel gives a clip in which it found nobody coverage 0 and a fixed "no person" vector (cosine 0 with
every clip that shows a person, 1 with every other no-person clip). Scored as it is, two empty clips would be each
other's perfect match, so the evaluation takes them out first: as queries they are reported as "no person" and
not scored; in the gallery they are never retrieved (the same rule as the Milvus filter ``coverage > 0`` of a pose
collection, :meth:`motionmatch.index.MotionStore.content_filter`). Tables without a ``coverage`` column, and every
encoder that sees all clips (coverage 1.0), lose nothing here.
"""
from __future__ import annotations

import pandas as pd

from ..errors import ParameterError
from ..table import COVERAGE_COLUMN, has_content

NO_PERSON = "no person"
NO_PERSON_COLUMNS = ("video_path", "clip_index", "start_s", "end_s", "label", "domain", COVERAGE_COLUMN)


def split_no_person(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(clips to rank, clips with no person)``: rows with coverage above 0, and the others (index reset)."""
    keep = has_content(table)
    return table[keep].reset_index(drop=True), table[~keep].reset_index(drop=True)


def rankable(table: pd.DataFrame, what: str = "the embeddings table") -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`split_no_person`, with a ParameterError saying what to do when no clip is left to rank."""
    kept, left_out = split_no_person(table)
    if len(table) and not len(kept):
        raise ParameterError(f"every one of the {len(table)} clips of {what} has coverage 0: the encoder found no "
                             "person in any of them, so there is nothing to rank. The pose channel needs people in "
                             "view; use the flow or V-JEPA 2 encoder for this footage (`--encoder flow`)")
    return kept, left_out


def no_person_note(n_left_out: int, n_total: int) -> str:
    """Plain words on the clips left out ('' when none was)."""
    if not n_left_out:
        return ""
    return (f"{n_left_out} of {n_total} clips have {NO_PERSON} in view (coverage 0): they are left out of the "
            "rankings, as queries (not scored) and in the gallery (never retrieved)")


def no_person_table(left_out: pd.DataFrame) -> pd.DataFrame:
    """The left-out clips for a report: where they are and what they were labelled."""
    return left_out[[c for c in NO_PERSON_COLUMNS if c in left_out.columns]].assign(result=NO_PERSON)


__all__ = ["NO_PERSON", "split_no_person", "rankable", "no_person_note", "no_person_table"]
