"""Report: what people look at: plots, timelines, animated previews, recorded values, rendered notebooks.

* :mod:`~motionmatch.report.plots`: score histograms, UMAP, heatmaps, thumbnails, metric bars;
* :mod:`~motionmatch.report.timelines`: similarity over time with found and true segments, self-similarity;
* :mod:`~motionmatch.report.previews`: size-bounded looping WebP/GIF previews of a time range;
* :mod:`~motionmatch.report.records`: values a notebook records for the tests and the run's summary;
* :mod:`~motionmatch.report.notebooks`: running the notebooks with papermill into HTML (``motionmatch report``).
"""
from .previews import animated_preview, format_range, format_time, preview_html, preview_row
from .records import read_records, record
from .timelines import found_table, segments_overview, self_similarity, similarity_timeline, span_table, video_scores

__all__ = ["animated_preview", "format_range", "format_time", "preview_html", "preview_row", "read_records", "record",
           "found_table", "segments_overview", "self_similarity", "similarity_timeline", "span_table", "video_scores"]
