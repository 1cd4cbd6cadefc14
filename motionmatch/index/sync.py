"""Syncing an embeddings table into Milvus: idempotent, fingerprint-aware, and complete (clip spec, calibration)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from ..errors import EncoderMismatchError, ParameterError
from ..table import FRAME_COLUMNS
from ..video.windows import recorded_clip_spec


@dataclass
class IndexSummary:
    """What an index sync did; printed by ``motionmatch index`` and notebooks 02 and 07."""

    collection: str
    uri: str
    rows_before: int
    rows_after: int
    videos_upserted: int
    videos_unchanged: int
    videos_replaced: int
    videos_removed: int
    notes: list[str] = field(default_factory=list)  # how the rows were written, the gallery calibration

    def __str__(self) -> str:
        return "\n".join([f"{self.collection} @ {self.uri}: {self.rows_before} -> {self.rows_after} rows; "
                          f"{self.videos_upserted} videos written ({self.videos_replaced} changed), "
                          f"{self.videos_unchanged} unchanged, {self.videos_removed} removed", *self.notes])


def index_embeddings(table: pd.DataFrame, store, encoder_id: str, preprocessing: dict,
                     remove_missing: bool = False, batch_size: int = 512, extra_vectors: dict | None = None,
                     clip_spec: dict | None = None, text_fields: tuple[str, ...] = ()) -> IndexSummary:
    """Sync the embeddings table into the store: idempotent, fingerprint-aware.

    Unchanged videos are not rewritten; a video whose content fingerprint changed has its
    old rows deleted before the new ones are written (it may have fewer clips now);
    with ``remove_missing`` rows of videos absent from the table are dropped.
    """
    if len(table) == 0:
        raise ParameterError("the embeddings table is empty — nothing to index")
    encoders_in_table = sorted(set(table["encoder_id"]))
    if encoders_in_table != [encoder_id]:
        raise EncoderMismatchError(f"the table holds embeddings from {encoders_in_table}, but indexing was asked "
                                   f"for {encoder_id}; extract again with the same encoder")
    dim = int(len(table["embedding"].iloc[0]))
    store.ensure_collection(encoder_id=encoder_id, dim=dim, preprocessing=preprocessing, extra_vectors=extra_vectors,
                            clip_spec=clip_spec, text_fields=text_fields)
    rows_before = store.count()
    existing = store.videos()
    stored_fp = dict(zip(existing["video_path"], existing["video_fingerprint"])) if len(existing) else {}
    table_fp = table.groupby("video_path", sort=False)["video_fingerprint"].first()

    stored_n = dict(zip(existing["video_path"], existing["n_clips"])) if len(existing) else {}
    table_n = table.groupby("video_path", sort=False).size()
    # a changed fingerprint, or as many clips stored as the table has (more: rewrite it whole)
    changed = [p for p, fp in table_fp.items() if p in stored_fp and (stored_fp[p] != fp or stored_n[p] > table_n[p])]
    new = [p for p in table_fp.index if p not in stored_fp]
    # fewer clips stored than the table has: a run killed mid-upsert, completed by upserting its rows again
    partial = [p for p, fp in table_fp.items() if p in stored_fp and stored_fp[p] == fp and stored_n[p] < table_n[p]]
    unchanged = len(table_fp) - len(changed) - len(new) - len(partial)
    removed = [p for p in stored_fp if p not in table_fp.index] if remove_missing else []
    if changed or removed:
        store.delete_videos(changed + removed)
    to_write = table[table["video_path"].isin(set(changed) | set(new) | set(partial))]
    if len(to_write):
        store.upsert(to_write, batch_size=batch_size, encoder_id=encoder_id, preprocessing=preprocessing)
    return IndexSummary(store.collection, store.uri, rows_before, store.count(),
                        len(changed) + len(new) + len(partial), unchanged, len(changed), len(removed))


def sync_frames(table: pd.DataFrame, store, remove_missing: bool = False, batch_size: int = 256):
    """Write the frame store of ``store``'s collection from ``table`` (idempotent; returns its IndexSummary)."""
    from .frames import FRAME_ENCODER_ID, FRAME_PREPROCESSING, frame_rows, frames_collection
    from .store import MotionStore

    rows = frame_rows(table)
    with MotionStore(store.uri, frames_collection(store.collection), timeout_s=store.timeout_s) as frames:
        return index_embeddings(rows, frames, FRAME_ENCODER_ID, FRAME_PREPROCESSING, remove_missing=remove_missing,
                                batch_size=batch_size, text_fields=FRAME_COLUMNS)


def index_run(run, store, remove_missing: bool = False, bulk: bool = False, bulk_dir: str | os.PathLike | None = None,
              batch_size: int = 512, print_fn=print) -> IndexSummary:
    """Index an extraction run (:class:`~motionmatch.extract.Run`) into ``store``: the one way to index.

    ``motionmatch index``, notebook 02 and notebook 07 all call this, so every collection records how its
    windows were cut (the clip and, for dense runs, the window spec: a query range is cut the same way) and
    stores its gallery calibration (segment z-scores; :func:`motionmatch.refine.zscore.save_gallery_calibration`).
    ``bulk``: pymilvus BulkWriter files and a server import (:mod:`motionmatch.index.bulk`), falling back to
    batched upserts with a note where the server cannot import.
    """
    from ..errors import ParameterError
    from ..refine.zscore import save_gallery_calibration
    from .frames import has_frames

    meta = run.meta
    options = dict(encoder_id=meta["encoder_id"], preprocessing=meta["preprocessing"], remove_missing=remove_missing,
                   clip_spec=recorded_clip_spec(meta), batch_size=batch_size)
    if bulk:  # the same sync, with bulk import as its write step
        from .bulk import BulkWriterStore

        writer = BulkWriterStore(store, files_dir=bulk_dir, print_fn=print_fn)
        summary = index_embeddings(run.table, writer, **options)
        report = writer.report
        summary.notes.append(f"bulk: {report.rows:,} rows by {report.method}"
                             + (f" ({report.rows_per_s:,.0f} rows/s)" if report.rows_per_s else ""))
    else:
        summary = index_embeddings(run.table, store, **options)
    if has_frames(run.table):  # dense windows: their frames too, for the fine stage of a segment search
        frames = sync_frames(run.table, store, remove_missing=remove_missing)
        summary.notes.append(f"frame store '{frames.collection}': {frames.rows_after} blocks of frames "
                             f"({frames.videos_upserted} videos written, {frames.videos_unchanged} unchanged)")
    try:
        calibration = save_gallery_calibration(store)
        summary.notes.append(f"gallery calibration (segment z-scores) fitted on {calibration.n_fitted_} windows and "
                             f"stored with collection '{store.collection}'")
    except ParameterError as err:  # too few windows to fit: a search refits (or runs uncalibrated) and says so
        summary.notes.append(f"gallery calibration not stored: {err}")
    return summary


def index(embeddings_dir: str | os.PathLike = "", milvus_uri: str = "", collection: str = "",
          recreate: bool = False, **options) -> IndexSummary:
    """Open the store (config's defaults for what is empty), index the run in ``embeddings_dir``, close the store."""
    from ..extract.run import load_run
    from .store import MotionStore

    run = load_run(embeddings_dir)  # a missing or unreadable folder fails here, before the store is touched
    with MotionStore(milvus_uri, collection) as store:
        if recreate:
            store.drop()
        return index_run(run, store, **options)


__all__ = ["IndexSummary", "index_embeddings", "sync_frames", "index_run", "index"]
