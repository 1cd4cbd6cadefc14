"""Tables a report shows, made from search and evaluation results (notebooks 03 and 07).

* :func:`hits_table`: search hits as rows people read, best first;
* :func:`label_hits_by_domain`: the same query searched in each gallery domain, and how many hits share its label;
* :func:`calibration_effect`: segment metrics with z-scores against the gallery next to raw cosine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..errors import ParameterError
from ..table import require_columns

HIT_COLUMNS = ("score", "label", "domain", "video", "clip_index", "start_s", "end_s")
CALIBRATION_METRICS = ("segment_uAP", "R1@tIoU=0.5", "VCSL_F1")
CALIBRATED, RAW = "z-score vs gallery", "raw cosine"


def _records(hits: Sequence[Any]) -> list[dict]:
    return [dict(hit) if isinstance(hit, Mapping) else dict(vars(hit)) for hit in hits]


def hits_table(hits: Sequence[Any]) -> pd.DataFrame:
    """Hits (:class:`motionmatch.index.Hit` objects, or the dicts of ``SearchResult.hit_records``) in their order,
    with the columns :data:`HIT_COLUMNS` (``video`` is the file name)."""
    rows = _records(hits)
    if not rows:
        return pd.DataFrame(columns=list(HIT_COLUMNS))
    frame = pd.DataFrame(rows)
    require_columns(frame, ["score", "video_path", "start_s", "end_s"], "hits")
    frame["video"] = frame["video_path"].map(lambda path: Path(str(path)).name)
    return frame[[c for c in HIT_COLUMNS if c in frame.columns]].reset_index(drop=True)


def label_hits_by_domain(hits_by_domain: Mapping[str, Sequence[Any]], label: str, query_domain: str) -> pd.DataFrame:
    """One row per gallery domain: whether it is the query's, how many hits share the query's ``label``, and k."""
    rows = []
    for domain, hits in hits_by_domain.items():
        records = _records(hits)
        rows.append({"gallery domain": domain, "same domain as query": domain == query_domain,
                     "hits with the query's label": sum(str(r.get("label", "")) == str(label) for r in records),
                     "k": len(records)})
    return pd.DataFrame(rows, columns=["gallery domain", "same domain as query", "hits with the query's label", "k"])


def calibration_effect(calibrated: pd.DataFrame, raw: pd.DataFrame,
                       metrics: Sequence[str] = CALIBRATION_METRICS) -> pd.DataFrame:
    """Segment metrics of the same queries scored two ways, side by side: rows ``(kind, metric)``, columns
    :data:`CALIBRATED` and :data:`RAW`. Both tables are :func:`motionmatch.evaluation.evaluate_search` metrics
    (columns ``kind, metric, value``)."""
    for name, table in ((CALIBRATED, calibrated), (RAW, raw)):
        require_columns(table, ["kind", "metric", "value"], f"the {name} metrics")
    both = pd.concat([calibrated.assign(scores=CALIBRATED), raw.assign(scores=RAW)], ignore_index=True)
    chosen = both[both["metric"].isin(list(metrics))]
    if chosen.empty:
        raise ParameterError(f"none of the metrics {list(metrics)} is in the tables; they hold "
                             f"{sorted(set(both['metric']))}")
    pivot = chosen.pivot_table(index=["kind", "metric"], columns="scores", values="value", sort=False)
    return pivot.reindex(columns=[CALIBRATED, RAW])


__all__ = ["HIT_COLUMNS", "CALIBRATION_METRICS", "CALIBRATED", "RAW", "hits_table", "label_hits_by_domain",
           "calibration_effect"]
