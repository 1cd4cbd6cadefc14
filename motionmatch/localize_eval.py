"""Evaluate segment search over a list of queries: ``motionmatch evaluate --segments``, notebook 07, bench_localize.

* :func:`read_query_list` reads the queries and their relevant moments (copy queries from
  :func:`~motionmatch.long_synthetic.write_copy_queries`, same-motion ones from
  :func:`write_same_motion_queries`, or the user's own CSVs);
* :func:`evaluate_search` runs :func:`~motionmatch.localize.search_range` for each and scores the
  segments with :func:`~motionmatch.localization.evaluate_localization` (95% bootstrap CIs);
* :func:`format_metrics` prints the table.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError
from .localize import GALLERY, load_gallery_calibration, search_range
from .validation import check_scalar


# ----------------------------------------------------------------------------- evaluation over a query list
def read_query_list(relevant_path: str | os.PathLike, queries_path: str | os.PathLike | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(queries, relevant)`` with absolute paths: ``relevant_path`` is a localisation ground truth
    (:data:`~motionmatch.localization.RELEVANT_COLUMNS`, e.g. ``relevant.csv`` from
    :func:`~motionmatch.long_synthetic.write_copy_queries`); ``queries_path`` (default ``queries.csv``
    beside it) lists ``query_id, path`` and optionally ``kind`` (default "copy") and the range to search,
    ``query_start_s, query_end_s`` (default: the whole file). Relative paths are relative to each CSV's folder.
    """
    from .localization import RELEVANT_COLUMNS
    from .table import require_columns

    relevant_path = Path(relevant_path)
    queries_path = Path(queries_path) if queries_path else relevant_path.parent / "queries.csv"
    for path, what in ((relevant_path, "--segments (the relevant moments)"), (queries_path, "--queries")):
        if not path.is_file():
            raise ParameterError(f"{path} does not exist: {what} must be a CSV; write one with "
                                 "motionmatch.long_synthetic.write_copy_queries or give its path")
    relevant, queries = pd.read_csv(relevant_path), pd.read_csv(queries_path)
    require_columns(relevant, RELEVANT_COLUMNS, f"{relevant_path}")
    require_columns(queries, ("query_id", "path"), f"{queries_path}")
    unknown = sorted(set(relevant["query_id"]) - set(queries["query_id"]))
    if unknown:
        raise ParameterError(f"{relevant_path} names queries {unknown[:5]} that {queries_path} does not list")
    queries = queries.copy()
    queries["path"] = [str((queries_path.parent / p).resolve()) for p in queries["path"].astype(str)]
    queries["kind"] = queries["kind"].fillna("copy").astype(str) if "kind" in queries else "copy"
    for column in ("query_start_s", "query_end_s"):
        queries[column] = queries[column].astype(float) if column in queries else np.nan
    missing = [p for p in queries["path"] if not Path(p).is_file()]
    if missing:
        raise ParameterError(f"{len(missing)} query file(s) listed in {queries_path} do not exist, e.g. {missing[0]}")
    relevant = relevant.copy()
    relevant["video"] = [str((relevant_path.parent / v).resolve()) for v in relevant["video"].astype(str)]
    return queries, relevant


def evaluate_search(store, queries: pd.DataFrame, relevant: pd.DataFrame, n_resamples: int = 1000, seed: int = 0,
                    **options: Any) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Run :func:`search_range` for every query and score the segments against ``relevant``.

    Returns ``(metrics, predictions, notes)``: ``metrics`` holds
    :func:`~motionmatch.localization.evaluate_localization`'s rows with a ``kind`` column (each query
    kind, then ``"all"``); ``predictions`` every segment found (localisation's prediction columns plus
    ``kind``). ``options`` go to :func:`search_range`; a "gallery" calibration is fitted once.
    """
    from .localization import PREDICTION_COLUMNS, evaluate_localization

    rows, notes = [], []
    if options.get("calibration", GALLERY) == GALLERY:
        options["calibration"], note = load_gallery_calibration(store)
        notes.append(note)
    for query in queries.itertuples(index=False):
        start = None if pd.isna(query.query_start_s) else float(query.query_start_s)
        end = None if pd.isna(query.query_end_s) else float(query.query_end_s)
        found = search_range(store, query.path, start, end, **options)
        notes.extend(f"{query.query_id}: {note}" for note in found.notes if not note.startswith("the query file is"))
        rows.extend({"query_id": query.query_id, "video": str(Path(s.video_path).resolve()), "start_s": s.start_s,
                     "end_s": s.end_s, "score": s.score, "query_start_s": s.query_start_s,
                     "query_end_s": s.query_end_s, "kind": query.kind} for s in found.segments)
    predictions = pd.DataFrame(rows, columns=[*PREDICTION_COLUMNS, "kind"])
    tables = []
    kinds = list(dict.fromkeys(queries["kind"]))
    for kind in kinds + (["all"] if len(kinds) > 1 else []):
        ids = set(queries["query_id"]) if kind == "all" else set(queries.loc[queries["kind"] == kind, "query_id"])
        chosen = relevant[relevant["query_id"].isin(ids)]
        if chosen.empty:
            continue
        table = evaluate_localization(predictions[predictions["query_id"].isin(ids)], chosen,
                                      n_resamples=n_resamples, seed=seed)
        tables.append(table.assign(kind=kind))
    return pd.concat(tables, ignore_index=True), predictions, notes


def write_same_motion_queries(out_dir: str | os.PathLike, n_queries: int = 20, query_s: float = 4.0,
                              seed: int = 0) -> Path:
    """"Same motion" queries for the long videos under ``out_dir`` (:func:`~motionmatch.long_synthetic.generate_long_videos`).

    Each query is a ``query_s`` range of one labelled segment (the indexed long video itself, searched by
    range, so its own file is left out by default); its relevant moments are the segments with the same
    label in *other* groups of *other* videos (a look the query never shows). Writes
    ``same_motion_queries.csv`` and ``same_motion_relevant.csv`` and, joined with the copy queries of
    ``queries.csv`` / ``relevant.csv`` when present, ``all_queries.csv`` / ``all_relevant.csv``; returns the
    path of ``all_relevant.csv`` (``motionmatch evaluate --segments DIR/all_relevant.csv --queries DIR/all_queries.csv``).
    """
    from .long_synthetic import DISTRACTOR_LABEL

    n_queries = check_scalar(n_queries, "n_queries", int, min_value=1)
    query_s = check_scalar(query_s, "query_s", float, min_value=0, include_min=False)
    out_dir = Path(out_dir)
    truth_path = out_dir / "ground_truth.csv"
    if not truth_path.is_file():
        raise ParameterError(f"{truth_path} does not exist: run generate_long_videos({str(out_dir)!r}) first")
    truth = pd.read_csv(truth_path)
    labelled = truth[truth["label"] != DISTRACTOR_LABEL]
    eligible = [row for row in labelled[labelled["end_s"] - labelled["start_s"] >= query_s].itertuples()
                if ((labelled["label"] == row.label) & (labelled["video"] != row.video)).any()]
    if not eligible:
        raise ParameterError(f"{truth_path}: no labelled segment of at least {query_s:g} s whose label occurs in "
                             "another video; generate more or longer videos, or a shorter query_s")
    rng = np.random.default_rng([seed, 3])
    queries, relevant = [], []
    for index in range(n_queries):
        row = eligible[int(rng.integers(len(eligible)))]
        start = float(row.start_s + rng.uniform(0, row.end_s - row.start_s - query_s))
        query_id = f"same_{index:03d}"
        queries.append({"query_id": query_id, "path": row.video, "kind": "same_motion", "label": row.label,
                        "video": row.video, "start_s": start, "end_s": start + query_s,
                        "query_start_s": start, "query_end_s": start + query_s})
        targets = labelled[(labelled["label"] == row.label) & (labelled["video"] != row.video)]
        relevant.extend({"query_id": query_id, "video": t.video, "start_s": t.start_s, "end_s": t.end_s,
                         "query_start_s": start, "query_end_s": start + query_s} for t in targets.itertuples())
    queries_frame, relevant_frame = pd.DataFrame(queries), pd.DataFrame(relevant)
    queries_frame.to_csv(out_dir / "same_motion_queries.csv", index=False)
    relevant_frame.to_csv(out_dir / "same_motion_relevant.csv", index=False)
    if (out_dir / "queries.csv").is_file() and (out_dir / "relevant.csv").is_file():
        queries_frame = pd.concat([pd.read_csv(out_dir / "queries.csv"), queries_frame], ignore_index=True)
        relevant_frame = pd.concat([pd.read_csv(out_dir / "relevant.csv"), relevant_frame], ignore_index=True)
    queries_frame.to_csv(out_dir / "all_queries.csv", index=False)
    relevant_frame.to_csv(out_dir / "all_relevant.csv", index=False)
    return out_dir / "all_relevant.csv"


def format_metrics(metrics: pd.DataFrame) -> str:
    """The metric table with 95% CIs, one block per query kind."""
    lines = []
    for kind, rows in metrics.groupby("kind", sort=False):
        lines.append(f"{kind} ({int(rows['n_queries'].iloc[0])} queries)")
        lines.extend(f"  {r.metric:<18} {r.value:7.3f}  [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in rows.itertuples())
    return "\n".join(lines)


__all__ = ["read_query_list", "evaluate_search", "write_same_motion_queries", "format_metrics"]
