"""Report: what people look at: plots, timelines, animated previews, tables, conclusions, recorded values, rendered
notebooks.

* :mod:`~motionmatch.report.plots`: score histograms, UMAP, heatmaps, thumbnails, metric bars, confused pairs;
* :mod:`~motionmatch.report.timelines`: similarity over time with found and true segments, self-similarity;
* :mod:`~motionmatch.report.ranges`: refined ranges against the ground truth (stage by stage), settings side by
  side, R1@tIoU per edit of the edited copies;
* :mod:`~motionmatch.report.previews`: size-bounded looping WebP/GIF previews of a time range;
* :mod:`~motionmatch.report.tables`: search hits, hits per gallery domain, the calibration effect;
* :mod:`~motionmatch.report.skeletons`: the pose channel's skeletons drawn over frames, camera by camera;
* :mod:`~motionmatch.report.cameras`: the cross-camera comparison's figures and plain-words lines (notebook 08);
* :mod:`~motionmatch.report.conclusions`: the plain-words conclusions of notebooks 04, 05 and 06;
* :mod:`~motionmatch.report.records`: values a notebook records for the tests and the run's summary;
* :mod:`~motionmatch.report.notebooks`: running the notebooks with papermill into HTML (``motionmatch report``).
"""
from .cameras import (camera_conclusion, coverage_summary, domain_matrices, failure_videos, matrices_figure,
                      method_table)
from .conclusions import beyond_conclusion, clustering_conclusion, evaluation_conclusion, hybrid_check_line
from .previews import animated_preview, format_range, format_time, preview_html, preview_row, segment_previews
from .ranges import answer_ranges, compare_metrics, edited_copy, per_edit_table, range_timeline
from .records import read_records, record
from .skeletons import SkeletonPanel, draw_skeleton, skeleton_figure, skeleton_panels
from .tables import calibration_effect, hits_table, label_hits_by_domain
from .timelines import (found_table, segments_overview, self_similarity, similarity_timeline, span_table,
                        timelines_for, video_durations, video_scores, video_self_similarity)

__all__ = ["camera_conclusion", "coverage_summary", "domain_matrices", "failure_videos", "matrices_figure",
           "method_table", "beyond_conclusion", "clustering_conclusion", "evaluation_conclusion", "hybrid_check_line",
           "animated_preview", "format_range", "format_time", "preview_html", "preview_row", "segment_previews",
           "answer_ranges", "compare_metrics", "edited_copy", "per_edit_table", "range_timeline",
           "read_records", "record", "SkeletonPanel", "draw_skeleton", "skeleton_figure", "skeleton_panels", "calibration_effect", "hits_table", "label_hits_by_domain", "found_table",
           "segments_overview", "self_similarity", "similarity_timeline", "span_table", "timelines_for",
           "video_durations", "video_scores", "video_self_similarity"]
