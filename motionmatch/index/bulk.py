"""Bulk ingest (`motionmatch index --bulk`): pymilvus ``LocalBulkWriter`` import files, imported by the server.

For millions of rows, batched upserts pay one gRPC round trip, one proto encoding and one WAL
message per batch. A Milvus *bulk import* instead reads column files (NumPy ``.npy``, one file per
field per chunk) that the server ingests straight into sealed segments. :func:`motionmatch.index.index_run`
with ``bulk=True`` is the same fingerprint-aware sync (:func:`motionmatch.index.sync.index_embeddings`:
unchanged videos skipped, changed videos deleted first, ``remove_missing``) with its write step replaced by
:class:`BulkWriterStore`:

1. the rows to write go through pymilvus's ``LocalBulkWriter`` (the collection's own schema checks
   every row) into ``files_dir`` (a temporary folder by default);
2. each written chunk is imported with ``utility.do_bulk_insert`` (Milvus 2.2-2.5's Import RPC) and
   the tasks are waited for; then the count is waited for until the rows are visible;
3. where that is not possible the rows are written with batched upserts instead, and the reason is
   said once (``print_fn``): Milvus Lite (no import), pymilvus without the ``bulk_writer`` extra, a
   server without the RPC, or a server that cannot read ``files_dir`` (a remote server reads import
   files from *its* storage — the local disk of a standalone with ``storageType: local``, else its
   MinIO/S3 bucket; pass ``files_dir`` on a path it shares, or use upserts).

A bulk import *inserts*: rows are written only for videos the collection does not hold (or whose
fingerprint changed, whose old rows are deleted first), so it never duplicates a clip id.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import EncoderMismatchError, MotionMatchError, ParameterError, StoreError
from .schema import IndexConfig, build_schema, scalar_columns, vector_matrix
from ..validation import check_scalar

CHUNK_BYTES = 128 * 2**20  # one import task per ~128 MB of vectors; BulkWriter buffers rows as Python lists
# (~8x the float32 size), so larger chunks cost GBs of client memory at 1024-d
IMPORT_TIMEOUT_S = 3600.0  # a whole import (all tasks), generous for 1e6 x 1024-d on 2 cores
VISIBLE_TIMEOUT_S = 120.0  # after the tasks complete, how long the imported rows may take to be counted
BULK_EXTRA_HINT = "pip install 'pymilvus[bulk_writer]' (or pip install -e .[server])"


class BulkImportUnavailable(MotionMatchError):
    """This server / client cannot bulk-import here; the message says why (the caller falls back to upserts)."""


@dataclass
class BulkReport:
    """How the rows of one bulk index were written."""
    method: str = "none"  # "bulk import" | "batched upserts" | "none" (nothing to write)
    rows: int = 0
    files: int = 0  # import files written (one per field per chunk)
    tasks: int = 0  # import tasks run
    write_s: float = 0.0  # writing the import files
    import_s: float = 0.0  # the server's import, until the rows are counted
    fallback_reason: str = ""  # why upserts were used instead, when they were
    task_ids: list[int] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float | None:
        spent = self.write_s + self.import_s
        return self.rows / spent if self.rows and spent > 0 else None


def _bulk_writer_module():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pymilvus import bulk_writer  # noqa: PLC0415 - optional extra
    except ModuleNotFoundError as error:  # pymilvus raises it naming the missing packages
        raise BulkImportUnavailable(f"pymilvus's BulkWriter is not installed ({error}); {BULK_EXTRA_HINT}") from error
    return bulk_writer


def write_import_files(table: pd.DataFrame, store, files_dir: str | Path, chunk_bytes: int = CHUNK_BYTES
                       ) -> list[list[str]]:
    """Write ``table`` as Milvus import files (NumPy, one file per field per chunk) with ``LocalBulkWriter``.

    The schema is the collection's (:func:`motionmatch.index.schema.build_schema`), so BulkWriter checks every
    row as the server would. Returns one list of absolute file paths per chunk (one import task each).
    """
    bulk_writer = _bulk_writer_module()
    held_id = store.encoder_info()["encoder_id"]
    dims = store.encoder_info()["vector_fields"]
    extra = {name: dim for name, dim in dims.items() if name != "embedding"}
    schema, _ = build_schema(store.client, dims["embedding"], extra, IndexConfig("FLAT"))
    columns = scalar_columns(table, held_id)
    where = f"collection '{store.collection}' at {store.uri}"
    if "encoder_id" in table.columns and len(table) and sorted(set(table["encoder_id"].astype(str))) != [held_id]:
        raise EncoderMismatchError(f"bulk import into {where}: the table holds embeddings from "
                                   f"{sorted(set(table['encoder_id'].astype(str)))}, the collection holds {held_id!r}")
    duplicated = pd.Series(columns["clip_id"]).duplicated()
    if duplicated.any():  # an import inserts: a repeated clip_id would become two rows
        raise ParameterError(f"the table has {int(duplicated.sum())} duplicate clip_id values (e.g. "
                             f"{columns['clip_id'][int(duplicated.to_numpy().argmax())]}); deduplicate it")
    vectors = {name: vector_matrix(table[name], name, name, dim, where) for name, dim in dims.items()}
    Path(files_dir).mkdir(parents=True, exist_ok=True)
    loggers = [logging.getLogger(f"pymilvus.bulk_writer.{name}") for name in ("buffer", "local_bulk_writer")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)  # it logs every folder and file at INFO
    try:
        writer = bulk_writer.LocalBulkWriter(schema=schema, local_path=str(files_dir), chunk_size=int(chunk_bytes),
                                             file_type=bulk_writer.BulkFileType.NUMPY)
        for i in range(len(table)):
            writer.append_row({**{name: values[i] for name, values in columns.items()},
                               **{name: matrix[i] for name, matrix in vectors.items()}})
        writer.commit()
    finally:
        for logger, level in zip(loggers, previous):
            logger.setLevel(level)
    return [[str(Path(f).resolve()) for f in files] for files in writer.batch_files]


def _connect_orm(store) -> str:
    """An ORM connection (``utility.do_bulk_insert`` has no MilvusClient equivalent for Milvus < 2.5)."""
    from pymilvus import connections

    alias = f"motionmatch-bulk-{id(store)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        connections.connect(alias, uri=store.uri, timeout=store.timeout_s)
    return alias


def import_files(store, batches: list[list[str]], timeout_s: float = IMPORT_TIMEOUT_S) -> list[int]:
    """Run one import task per batch of files and wait for all; BulkImportUnavailable when the server cannot."""
    from pymilvus import connections, utility

    alias = _connect_orm(store)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                task_ids = [utility.do_bulk_insert(store.collection, files=files, using=alias) for files in batches]
            except Exception as error:  # noqa: BLE001 - e.g. UNIMPLEMENTED on servers without the Import RPC
                raise BulkImportUnavailable(f"the server at {store.uri} refused the import request: {error}") from error
            deadline = time.monotonic() + timeout_s
            pending = set(task_ids)
            while pending:
                for task_id in sorted(pending):
                    state = utility.get_bulk_insert_state(task_id, using=alias)
                    if state.state_name == "Completed":
                        pending.discard(task_id)
                    elif state.state_name.startswith("Failed") or state.state_name == "Unknown":
                        raise BulkImportUnavailable(
                            f"import task {task_id} failed on {store.uri}: {state.failed_reason or state.state_name} "
                            f"(files such as {state.files[:1] or batches[0][:1]}); a server reads import files from "
                            "its own storage, so they must be on a path it can read")
                if pending and time.monotonic() > deadline:
                    raise StoreError(f"bulk import into '{store.collection}' at {store.uri} did not finish within "
                                     f"{timeout_s:.0f} s ({len(pending)} of {len(task_ids)} tasks pending); check "
                                     "the server log, then re-run `motionmatch index` (it writes only missing videos)")
                if pending:
                    time.sleep(0.5)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ORM calls are deprecated in pymilvus 3 but still the Import RPC's door
            connections.disconnect(alias)
    return task_ids


class BulkWriterStore:
    """A MotionStore whose ``upsert`` bulk-imports (falling back to the store's batched upserts).

    Everything else is the wrapped store's, so :func:`motionmatch.extract.local.index_embeddings` runs unchanged.
    """

    def __init__(self, store, files_dir: str | Path | None = None, print_fn: Callable[[str], Any] = print,
                 chunk_bytes: int = CHUNK_BYTES, import_timeout_s: float = IMPORT_TIMEOUT_S):
        self._store = store
        self.files_dir = Path(files_dir) if files_dir else None
        self.print_fn = print_fn
        self.chunk_bytes = check_scalar(chunk_bytes, "chunk_bytes", int, min_value=2**20)
        self.import_timeout_s = check_scalar(import_timeout_s, "import_timeout_s", float, min_value=0, include_min=False)
        self.report = BulkReport()

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _fallback(self, reason: str, table: pd.DataFrame, **upsert_options) -> int:
        self.report.fallback_reason = reason
        self.report.method = "batched upserts"
        self.print_fn(f"bulk import not used: {reason}. Writing {len(table):,} rows with batched upserts instead.")
        started = time.perf_counter()
        written = self._store.upsert(table, **upsert_options)
        self.report.import_s += time.perf_counter() - started
        self.report.rows += written
        return written

    def upsert(self, table: pd.DataFrame, batch_size: int = 512, **options) -> int:
        upsert_options = {"batch_size": batch_size, **options}
        if self._store.is_local:
            return self._fallback(f"Milvus Lite ({self._store.uri}) has no bulk import", table, **upsert_options)
        if len(table) == 0:
            return 0
        before = self._store.count()
        folder = self.files_dir or Path(tempfile.mkdtemp(prefix="motionmatch_bulk_"))
        owned = self.files_dir is None
        try:
            started = time.perf_counter()
            try:
                self._store.upsert(table.iloc[:0], **upsert_options)  # the store's encoder / preprocessing check
                batches = write_import_files(table, self._store, folder, self.chunk_bytes)
                self.report.write_s += time.perf_counter() - started
                self.report.files += sum(len(b) for b in batches)
                started = time.perf_counter()
                self.report.task_ids += import_files(self._store, batches, self.import_timeout_s)
            except BulkImportUnavailable as reason:
                return self._fallback(str(reason), table, **upsert_options)
            self.report.tasks += len(batches)
            self._wait_visible(before + len(table))
            self.report.import_s += time.perf_counter() - started
            self.report.method = "bulk import"
            self.report.rows += len(table)
            return len(table)
        finally:
            if owned:
                shutil.rmtree(folder, ignore_errors=True)

    def _wait_visible(self, expected: int) -> None:
        deadline = time.monotonic() + VISIBLE_TIMEOUT_S
        while (counted := self._store.count()) < expected:
            if time.monotonic() > deadline:
                raise StoreError(f"bulk import into '{self._store.collection}' at {self._store.uri} completed, but "
                                 f"{counted:,} of {expected:,} rows are counted after {VISIBLE_TIMEOUT_S:.0f} s; "
                                 "check the server log (query node) and count again later")
            time.sleep(0.5)
