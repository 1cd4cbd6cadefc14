"""report/plots.py: the confused pairs of notebook 05 drawn one strip each, from real confusions of a real table."""
from __future__ import annotations

import numpy as np
import pytest

from motionmatch.data.synthetic import generate_sample_dataset
from motionmatch.errors import ParameterError
from motionmatch.evaluation import confused_examples
from motionmatch.report import plots

from test_report_conclusions import shifted_table


def test_confused_strips_draw_the_most_frequent_confusions_first(tmp_path):
    table = shifted_table(permute=True, noise=0.3)
    examples = confused_examples(table, n=5, exclude="group")
    assert len(examples) >= 2
    strips = plots.confused_strips(examples, n=2)
    assert len(strips) == 2
    for strip, row in zip(strips, examples.itertuples()):
        assert strip.layout.title.text == (f"'{row.query_label}' confused with '{row.neighbour_label}' "
                                           f"({row.cell_count} times)")
        titles = [a.text for a in strip.layout.annotations]
        assert titles == [f"QUERY<br>{row.query_label}", f"#1 {row.score:.3f}<br>{row.neighbour_label}"]
        assert len(strip.data) == 2  # the query's thumbnail and its neighbour's (grey: these files do not exist)
    assert plots.confused_strips(examples.head(0)) == []
    with pytest.raises(ParameterError, match="n must be"):
        plots.confused_strips(examples, n=0)


def test_confused_strips_show_the_clips_frames(tmp_path):
    manifest = generate_sample_dataset(tmp_path, videos_per_class_per_domain=1, num_frames=8, size=(64, 48),
                                       progress=False)
    import pandas as pd

    videos = pd.read_csv(manifest)
    path = str(tmp_path / videos.path.iloc[0])
    row = {"query_label": "a", "neighbour_label": "b", "cell_count": 1, "score": 0.5, "query_video_path": path,
           "query_start_s": 0.0, "query_end_s": 0.3, "neighbour_video_path": str(tmp_path / "missing.mp4"),
           "neighbour_start_s": 0.0, "neighbour_end_s": 0.3}
    strip = plots.confused_strips(pd.DataFrame([row]), n=1)[0]
    query, missing = (np.asarray(trace.z) for trace in strip.data)
    assert query.std() > 0 and missing.std() == 0  # a decoded frame, then the grey of a file that cannot be read
