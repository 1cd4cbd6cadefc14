"""Evaluation: protocols on top of :mod:`motionmatch.metrics` (who may retrieve whom, which gallery), and the
suites the reports show.

* :mod:`~motionmatch.evaluation.retrieval`: exact blockwise search, exclusion masks, leave-one-out,
  same/cross-domain, train-test, :func:`evaluate_scores` for any score matrix;
* :mod:`~motionmatch.evaluation.diagnostics`: score statistics (the 0.95-0.98 claim), confusion, hubness;
* :mod:`~motionmatch.evaluation.findings`: the suite behind notebook 05 and ``motionmatch evaluate``;
* :mod:`~motionmatch.evaluation.segments`: segment search over a query list (``evaluate --segments``);
* :mod:`~motionmatch.evaluation.coverage`: clips with no person (coverage 0) left out of the rankings, and said so;
* :mod:`~motionmatch.evaluation.scored`: any score matrix (a fused method's) per domain pair, and its worst queries.
"""
from .diagnostics import confused_examples, confusion_top1, hubness, score_statistics
from .findings import (NOTES_P10, BandShares, Findings, band_shares, evaluate, format_headline, run_findings,
                       score_summary, score_values, write_findings)
from .retrieval import (DEFAULT_KS, QueryMetrics, RetrievalResult, domain_matrix, evaluate_retrieval, evaluate_scores,
                        exclusion_comparison, exclusion_mask, leave_one_out, per_class, query_metrics,
                        results_to_json, same_vs_cross_domain, summarise_metrics, train_test_retrieval, write_results)
from .segments import evaluate_search, format_metrics
from .coverage import NO_PERSON, no_person_note, no_person_table, rankable, split_no_person
from .scored import score_domain_pairs, score_protocol, worst_queries

__all__ = ["confused_examples", "confusion_top1", "hubness", "score_statistics", "NOTES_P10", "BandShares", "Findings",
           "band_shares", "evaluate", "format_headline", "run_findings", "score_summary", "score_values", "write_findings", "DEFAULT_KS", "QueryMetrics",
           "RetrievalResult", "domain_matrix", "evaluate_retrieval", "evaluate_scores", "exclusion_comparison",
           "exclusion_mask", "leave_one_out", "per_class", "query_metrics", "results_to_json", "same_vs_cross_domain",
           "summarise_metrics", "train_test_retrieval", "write_results", "evaluate_search", "format_metrics",
           "NO_PERSON", "no_person_note", "no_person_table", "rankable", "split_no_person", "score_domain_pairs",
           "score_protocol", "worst_queries"]
