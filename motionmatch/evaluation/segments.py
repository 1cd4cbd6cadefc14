"""Evaluate segment search over a list of queries: ``motionmatch evaluate --segments``, notebook 07, bench_localize.

:func:`evaluate_search` runs :func:`~motionmatch.search.search_range` for each query of a list
(:func:`motionmatch.data.read_query_list`) and scores the segments with
:func:`~motionmatch.metrics.evaluate_localization` (95% bootstrap CIs); :func:`format_metrics` prints the table.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..metrics.bootstrap import DEFAULT_N_BOOT
from ..metrics.localization import PREDICTION_COLUMNS, evaluate_localization
from ..refine.zscore import GALLERY, load_gallery_calibration
from ..search.config import SegmentSearchConfig
from ..search.range import search_range


def evaluate_search(store, queries: pd.DataFrame, relevant: pd.DataFrame, config: SegmentSearchConfig | None = None,
                    n_boot: int = DEFAULT_N_BOOT, seed: int = 0, encoder=None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Run :func:`search_range` for every query and score the segments against ``relevant``.

    Returns ``(metrics, predictions, notes)``: ``metrics`` holds
    :func:`~motionmatch.metrics.localization.evaluate_localization`'s rows with a ``kind`` column (each query
    kind, then ``"all"``); ``predictions`` every segment found (localisation's prediction columns plus
    ``kind``, the query's kind, and ``segment_kind``: copy or same_motion). ``config`` is every query's search
    (a "gallery" calibration is loaded once); ``encoder`` embeds the queries (default: the collection's).
    """
    config = SegmentSearchConfig() if config is None else config
    rows, notes = [], []
    if config.calibration == GALLERY:
        calibration, note = load_gallery_calibration(store)
        config = config.replace(calibration=calibration)
        notes.append(note)
    for query in queries.itertuples(index=False):
        start = None if pd.isna(query.query_start_s) else float(query.query_start_s)
        end = None if pd.isna(query.query_end_s) else float(query.query_end_s)
        found = search_range(store, query.path, start, end, config, encoder=encoder)
        notes.extend(f"{query.query_id}: {note}" for note in found.notes if not note.startswith("the query file is"))
        rows.extend({"query_id": query.query_id, "video": str(Path(s.video_path).resolve()), "start_s": s.start_s,
                     "end_s": s.end_s, "score": s.score, "query_start_s": s.query_start_s,
                     "query_end_s": s.query_end_s, "kind": query.kind, "segment_kind": s.kind}
                    for s in found.segments)
    predictions = pd.DataFrame(rows, columns=[*PREDICTION_COLUMNS, "kind", "segment_kind"])
    tables = []
    kinds = list(dict.fromkeys(queries["kind"]))
    for kind in kinds + (["all"] if len(kinds) > 1 else []):
        ids = set(queries["query_id"]) if kind == "all" else set(queries.loc[queries["kind"] == kind, "query_id"])
        chosen = relevant[relevant["query_id"].isin(ids)]
        if chosen.empty:
            continue
        table = evaluate_localization(predictions[predictions["query_id"].isin(ids)], chosen,
                                      n_boot=n_boot, seed=seed)
        tables.append(table.assign(kind=kind))
    return pd.concat(tables, ignore_index=True), predictions, notes


def format_metrics(metrics: pd.DataFrame) -> str:
    """The metric table with 95% CIs, one block per query kind."""
    lines = []
    for kind, rows in metrics.groupby("kind", sort=False):
        lines.append(f"{kind} ({int(rows['n_queries'].iloc[0])} queries)")
        lines.extend(f"  {r.metric:<18} {r.value:7.3f}  [{r.ci_low:.3f}, {r.ci_high:.3f}]" for r in rows.itertuples())
    return "\n".join(lines)


__all__ = ["evaluate_search", "format_metrics"]
