"""Channels of the same clips side by side: each encoder alone and their fusion, as score matrices (notebook 08).

A *channel* is one encoder's vectors of the same clips (flow, pose, V-JEPA 2). :func:`extract_channels` embeds a
source once per encoder with the same clips, :func:`channel_table` puts them in one table (the first is the main
embedding, the others extra columns with their coverage), and :func:`channel_scores` gives the (n, n) score
matrices of every channel alone and of the fusion a comparison chose on validation
(:data:`~motionmatch.beyond.compare.ROW_CHANNELS`), on any table of those clips, for the protocols of
:mod:`motionmatch.evaluation.scored` (per camera pair, worst queries).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from .methods import FittedMethod, MethodSpec, VectorSpec
from .splits import attach_extra_vectors


def channels_dir(source: str | os.PathLike, out_dir: str | os.PathLike = "") -> Path:
    """``out_dir``, else ``<setting channels_dir>/<the source's folder name>`` (a manifest names its folder;
    channels_dir defaults to data/interim/channels, MOTIONMATCH_CHANNELS_DIR overrides it)."""
    from ..config import setting

    if str(out_dir):
        return Path(out_dir)
    source = Path(source)
    return Path(setting("channels_dir")) / (source.parent.name if source.suffix == ".csv" else source.name)


def extract_channels(source: str | os.PathLike, out_dir: str | os.PathLike = "", encoders: Sequence[str] = ("flow", "pose"),
                     frames_per_clip: int = 16, frame_stride: int = 1, clips_per_video: int = 9,
                     print_fn: Callable[[str], object] = print) -> dict:
    """Embed ``source`` once per encoder name into ``out_dir/<name>`` (:func:`channels_dir`) with the same clips;
    ``{name: Run}``.

    Resumable like every extraction (a finished video is not embedded again). The clips are the same for every
    encoder (``frames_per_clip`` frames every ``frame_stride``, ``clips_per_video`` per video), so the tables pair
    up row by row on (video_path, clip_index).
    """
    from ..extract.run import extract, load_run

    if not encoders:
        raise ParameterError("give at least one encoder name, e.g. encoders=('flow', 'pose')")
    runs = {}
    for name in encoders:
        folder = channels_dir(source, out_dir) / name
        summary = extract(source, folder, encoder=name, frames_per_clip=frames_per_clip, frame_stride=frame_stride,
                          clips_per_video=clips_per_video, workers=0, progress=False, print_fn=print_fn)
        print_fn(str(summary))
        runs[name] = load_run(folder)
    return runs


def channel_table(runs: Mapping[str, object]) -> pd.DataFrame:
    """The first run's table with every other run's vectors (and coverage) as extra columns named after it."""
    names = list(runs)
    if not names:
        raise ParameterError("no runs given; pass {name: Run} from extract_channels")
    return attach_extra_vectors(runs[names[0]].table, {name: runs[name].table for name in names[1:]})


def channel_scores(table: pd.DataFrame, columns: Mapping[str, str], exclude: str = "group",
                   fused: FittedMethod | None = None) -> dict[str, np.ndarray]:
    """(n, n) score matrices over ``table``: each channel alone (``columns``: name -> vector column, cosine; a
    channel with coverage takes no part in pairs with a clip it saw nothing in: ``-inf``), and ``fused`` (a fitted
    method, e.g. ``result.fitted[ROW_CHANNELS]`` of a comparison) under ``"fused"``. Pairs a query may not retrieve
    (``exclude``) are ``-inf``."""
    if not columns:
        raise ParameterError("columns is empty; give {name: vector column}, e.g. {'flow': 'embedding', 'pose': 'pose'}")
    scores = {}
    for name, column in columns.items():  # raw cosine needs no fit
        scores[name] = MethodSpec((VectorSpec("raw", column=column),)).fit(table).score(table, table, exclude)[0]
    if fused is not None:
        scores["fused"] = fused.score(table, table, exclude)[0]
    return scores


def fusion_fallback(fused: FittedMethod, table: pd.DataFrame, exclude: str = "group") -> dict:
    """Where a gated channel saw nothing, does the fusion score exactly as the main channel alone?

    Scores ``table`` with ``fused`` and with its first field alone (same fitted transform) and compares the pairs
    where some channel is absent (a clip with coverage 0): ``{"pairs", "pairs_without_a_channel",
    "max_difference_there", "same_ranking_there"}``; a difference of 0 means fusion fell back to the main channel.
    """
    from .gating import field_gates
    from ..evaluation.retrieval import exclusion_mask

    alone = FittedMethod(MethodSpec((fused.spec.fields[0],)), [fused.fields[0]])
    fused_scores = fused.score(table, table, exclude)[0]
    main_scores = alone.score(table, table, exclude)[0]
    allowed = ~exclusion_mask(table, table, exclude)
    gates = [g for g in field_gates([f.spec.column for f in fused.fields], table, table) if g is not None]
    absent = (~np.logical_and.reduce(gates) if gates else np.zeros(allowed.shape, dtype=bool)) & allowed
    difference = np.abs(fused_scores[absent] - main_scores[absent])
    queries = np.flatnonzero(absent.any(axis=1) & (absent.sum(axis=1) == allowed.sum(axis=1)))  # nothing else
    same_order = all(np.array_equal(np.argsort(-fused_scores[i], kind="stable"), np.argsort(-main_scores[i], kind="stable"))
                     for i in queries)
    return {"pairs": int(allowed.sum()), "pairs_without_a_channel": int(absent.sum()),
            "max_difference_there": float(difference.max()) if difference.size else 0.0,
            "same_ranking_there": bool(same_order)}


__all__ = ["fusion_fallback", "channels_dir", "extract_channels", "channel_table", "channel_scores"]
