"""Plain-words conclusions of the reports (notebooks 04, 05 and 06), generated from their numbers: none is typed in.

Each function returns markdown for ``IPython.display.Markdown``. The thresholds that decide a sentence are named
here, so a reader can see where "this index agrees" ends:

=====================  =====  =================================================================================
:data:`BUNCHED_SHARE`  0.5    the notes' "most scores sit at 0.95-0.98" holds when more than half the top-k do
:data:`SEPARATED_AUC`  0.8    below this ROC AUC the score gap is small against the spread: rank, don't threshold
:data:`CROSS_DROP`     0.1    a cross-domain P@10 this far below same-domain reproduces the notes' finding
:data:`HUB_SKEW`       1.0    a k-occurrence skewness above this: a few hubs crowd every result list
=====================  =====  =================================================================================
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..evaluation.findings import NOTES_P10, Findings, band_shares

if TYPE_CHECKING:  # beyond loads torch (the heads): imported when notebook 06's conclusion is written
    from ..beyond import ComparisonResult, HybridCheckResult

BUNCHED_SHARE = 0.5
SEPARATED_AUC = 0.8
CROSS_DROP = 0.1
HUB_SKEW = 1.0


def _lines(encoder_note: str, body: list[str], caveat: str) -> str:
    return "\n".join([f"**Encoder behind every number here:** {encoder_note}", "", *body, *([caveat] if caveat else [])])


def clustering_conclusion(stats: dict[str, Any], domains: pd.DataFrame, encoder_note: str, caveat: str = "") -> str:
    """Notebook 04's conclusion: score bunching, separability and the same- against cross-domain drop.

    ``stats``: :func:`motionmatch.evaluation.score_statistics`; ``domains``:
    :meth:`motionmatch.evaluation.Findings.domain_comparison` (rows same-domain, cross-domain; column P@10).
    """
    shares = band_shares(stats)
    band = f"{shares.low:.2f}-{shares.high:.2f}"
    same, cross = float(domains.loc["same-domain", "P@10"]), float(domains.loc["cross-domain", "P@10"])
    body = [
        f"- **Score bunching.** {shares.top:.0%} of the top-{shares.top_k} scores and {shares.all_pairs:.0%} of all pair "
        f"scores fall in {band}. The notes reported that most scores sit there; "
        + ("this index agrees." if shares.top > BUNCHED_SHARE else "this index does not show that: its scores spread wider."),
        f"- **Separability.** Relevant pairs average {stats['relevant_mean']:.3f}, irrelevant pairs "
        f"{stats['irrelevant_mean']:.3f} (gap {stats['gap']:.3f}, ROC AUC {stats['auc']:.2f}). "
        + ("The gap is small compared with the spread, so absolute scores say little: rank, don't threshold."
           if stats["auc"] < SEPARATED_AUC else "The two distributions are well separated."),
        f"- **Same vs cross domain.** P@10 is {same:.2f} within a domain and {cross:.2f} across domains "
        f"(the notes: {NOTES_P10['same-domain']:.2f} and {NOTES_P10['cross-domain']:.2f}). "
        + ("The cross-domain drop reproduces the notes' finding." if cross < same - CROSS_DROP
           else "Here the cross-domain drop is small."),
    ]
    return _lines(encoder_note, body, caveat)


def evaluation_conclusion(found: Findings, encoder_note: str, caveat: str = "") -> str:
    """Notebook 05's conclusion: leakage, same against cross domain, score separability and hubness, each
    stated only when :func:`motionmatch.evaluation.run_findings` computed it."""
    p10 = found.headline.set_index(["protocol", "exclude"])["P@10"] if len(found.headline) else pd.Series(dtype=float)
    body = []
    if ("leave-one-out", "group") in p10 and ("leave-one-out", "video") in p10:
        body.append(f"- Leave-one-out P@10 is {p10[('leave-one-out', 'group')]:.2f} with the query's group excluded and "
                    f"{p10[('leave-one-out', 'video')]:.2f} excluding only its video: near-duplicates add "
                    f"{found.leakage('P@10'):+.2f}.")
    if ("same-domain", "group") in p10 and ("cross-domain", "group") in p10:
        body.append(f"- Same-domain P@10 {p10[('same-domain', 'group')]:.2f} against cross-domain "
                    f"{p10[('cross-domain', 'group')]:.2f} (the notes reported {NOTES_P10['same-domain']:.2f} and "
                    f"{NOTES_P10['cross-domain']:.2f} for V-JEPA 2 on UCF101).")
    if found.scores is not None:
        shares = band_shares(found.scores)
        body.append(f"- Relevant and irrelevant scores: ROC AUC {found.scores['auc']:.2f}; {shares.top:.0%} of "
                    f"top-{shares.top_k} scores lie in {shares.low:.2f}-{shares.high:.2f}.")
    if found.hubness is not None:
        skew = float(found.hubness["skewness"])
        body.append(f"- Hubness skew {skew:.2f}" + (" — hubs are a real problem here." if skew > HUB_SKEW else "."))
    return _lines(encoder_note, body, caveat)


def hybrid_check_line(check: "HybridCheckResult") -> str:
    """One bullet: how often Milvus hybrid search gave numpy's top-k (weighted fusion, worst protocol), and whether
    the transforms stored with the collection came back unchanged (:attr:`HybridCheckResult.round_trip`)."""
    agreement = check.table.xs("weighted", level="ranker")["same top-k scores (ties either way)"].dropna()
    worst = f"{agreement.min():.0%}" if len(agreement) else "n/a (no query with a relevant clip)"
    difference = float(check.round_trip.get("max_query_vector_difference", math.nan))
    k = next((c for c in check.table.columns if c.startswith("numpy P@")), "numpy P@k")[len("numpy P@"):]
    return (f"- **Milvus hybrid search against the numpy fusion** ({check.n_queries_checked} of {check.n_test_clips} "
            f"test clips as queries): weighted fusion gives the same top-{k} for {worst} of the queries (worst "
            f"protocol); the calibration and head came back from the collection unchanged (max difference "
            f"{difference:.1e}).")


def beyond_conclusion(result: "ComparisonResult", check: "HybridCheckResult | None", target_gain: float,
                      encoder_note: str, caveat: str = "") -> str:
    """Notebook 06's conclusion: :func:`motionmatch.beyond.conclusion_lines` (baseline, best combination, the
    acceptance test), then the Milvus hybrid check's agreement when one was run."""
    from ..beyond import conclusion_lines

    lines = conclusion_lines(result, target_gain=target_gain, encoder_description=encoder_note)
    if check is not None:
        lines.append(hybrid_check_line(check))
    if caveat:
        lines.append(caveat)
    return "\n".join(lines)


__all__ = ["BUNCHED_SHARE", "SEPARATED_AUC", "CROSS_DROP", "HUB_SKEW", "clustering_conclusion",
           "evaluation_conclusion", "hybrid_check_line", "beyond_conclusion"]
