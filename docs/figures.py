"""The README's picture: a query range of a long video and the range MotionMatch answers with, as looping GIFs.

Everything is made here, through the package's public API (what ``make demo`` and notebook 07 call): 3 generated
long videos, dense windows (FlowEncoder), a Milvus Lite index with its frame store, one same-motion query from
the ground truth, ``search_range``, and :func:`motionmatch.report.animated_preview` of the query and of the top
answer. It writes ``docs/img/query.gif``, ``docs/img/answer.gif`` and ``docs/img/figure.json`` (what was searched,
what came back, and the ground truth), and prints the same. About 1-2 minutes on 2 cores::

    .venv/bin/python docs/figures.py
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

IMG = Path(__file__).resolve().parent / "img"
SEED = int(os.environ.get("FIGURE_SEED", "1"))


def main() -> dict:
    import pandas as pd

    from motionmatch.data import ensure_long_sample, load_source, pick_query
    from motionmatch.encoders import build_encoder
    from motionmatch.extract import extract_embeddings, load_run
    from motionmatch.index import MotionStore, index_run
    from motionmatch.report import animated_preview
    from motionmatch.search import SegmentSearchConfig, search_range
    from motionmatch.video import WindowSpec, dense_clip_spec

    work = Path(tempfile.mkdtemp(prefix="motionmatch-figure-"))
    videos = work / "videos"
    manifest_path = ensure_long_sample(videos, n_videos=3, duration_s=40.0, seed=SEED, copy_queries=0,
                                       progress=False)
    truth = pd.read_csv(videos / "ground_truth.csv")
    manifest, _ = load_source(manifest_path)
    extract_embeddings(manifest, build_encoder("flow"), work / "embeddings", clip_spec=dense_clip_spec(),
                       window_spec=WindowSpec(shots="content"), progress=False, print_fn=lambda *_: None)
    query = pick_query(truth, "", -1.0, -1.0, seed=SEED)
    query_path = str((videos / query["video"]).resolve())
    with MotionStore(str(work / "index.db"), "figure") as store:
        index_run(load_run(work / "embeddings"), store, print_fn=lambda *_: None)
        result = search_range(store, query_path, query["start_s"], query["end_s"], SegmentSearchConfig(k=5))
    top = result.segments[0]
    answer_truth = truth[(truth.video == Path(top.video_path).name) & (truth.end_s > top.start_s)
                         & (truth.start_s < top.end_s)]
    IMG.mkdir(exist_ok=True)
    (IMG / "query.gif").write_bytes(animated_preview(query_path, query["start_s"], query["end_s"], width=160,
                                                     image_format="gif", max_bytes=400_000))
    (IMG / "answer.gif").write_bytes(animated_preview(top.video_path, top.start_s, top.end_s, width=160,
                                                      image_format="gif", max_bytes=400_000))
    described = {
        "command": ".venv/bin/python docs/figures.py",
        "query": {"video": query["video"], "start_s": round(float(query["start_s"]), 2),
                  "end_s": round(float(query["end_s"]), 2), "label": query["label"]},
        "answer": {"video": Path(top.video_path).name, "start_s": round(top.start_s, 2), "end_s": round(top.end_s, 2),
                   "kind": top.kind, "score": round(float(top.score), 3)},
        "truth_there": answer_truth[["start_s", "end_s", "label"]].round(2).to_dict("records"),
        "next_answers": [{"video": Path(s.video_path).name, "start_s": round(s.start_s, 2), "end_s": round(s.end_s, 2),
                          "kind": s.kind, "score": round(float(s.score), 3)} for s in result.segments[1:3]],
        "truth_of_query_label": truth[truth.label == query["label"]][["video", "start_s", "end_s"]].round(2)
        .to_dict("records"),
    }
    (IMG / "figure.json").write_text(json.dumps(described, indent=2) + "\n")
    print(json.dumps(described, indent=2))
    return described


if __name__ == "__main__":
    main()
