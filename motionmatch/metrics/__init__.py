"""Metrics: pure functions of scores, relevance and time ranges, and the one bootstrap.

* :mod:`~motionmatch.metrics.ranking`: P@k, Recall@k, HitRate@k, mAP, nDCG@k, the one top-k;
* :mod:`~motionmatch.metrics.localization`: temporal IoU, R1@tIoU, VCSL segment P/R/F1, VSC22 µAP, boundary error;
* :mod:`~motionmatch.metrics.boundary`: cut (change-point) precision, recall and F1 within a tolerance;
* :mod:`~motionmatch.metrics.bootstrap`: percentile confidence intervals over queries.

Protocols (who is excluded, which gallery) sit on top, in :mod:`motionmatch.evaluation`.
"""
from .bootstrap import (DEFAULT_CONFIDENCE, DEFAULT_N_BOOT, bootstrap_ci, bootstrap_means, bootstrap_weights,
                        check_bootstrap, percentile_interval, resample_counts)
from .boundary import boundary_f1, f1_from_counts
from .localization import (PREDICTION_COLUMNS, RELEVANT_COLUMNS, LocalizationParts, evaluate_localization,
                           intersection_length, localization_parts, pair_micro_ap, segment_micro_ap,
                           segment_precision_recall, temporal_iou, union_length)
from .ranking import (average_precision, average_precision_at_k, check_k, fraction_in_range, hit_rate_at_k, metric_names,
                      ndcg_at_k, precision_at_k, rank_relevance, ranking_metrics, recall_at_k, top_k_order)

__all__ = ["DEFAULT_CONFIDENCE", "DEFAULT_N_BOOT", "bootstrap_ci", "bootstrap_means", "bootstrap_weights",
           "check_bootstrap", "percentile_interval", "resample_counts", "boundary_f1", "f1_from_counts",
           "PREDICTION_COLUMNS", "RELEVANT_COLUMNS", "LocalizationParts", "evaluate_localization",
           "intersection_length", "localization_parts", "pair_micro_ap", "segment_micro_ap",
           "segment_precision_recall", "temporal_iou", "union_length", "average_precision", "average_precision_at_k",
           "check_k", "fraction_in_range", "hit_rate_at_k", "metric_names", "ndcg_at_k", "precision_at_k",
           "rank_relevance", "ranking_metrics", "recall_at_k", "top_k_order"]
