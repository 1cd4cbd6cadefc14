"""MotionStore: the Milvus wrapper (a Milvus Lite ``.db`` path or a server / cluster URI).

One ``MilvusClient`` per store. The collection records which encoder made its vectors
(encoder id, dimension, canonical preprocessing JSON) in its properties, so inserts and
queries embedded any other way are refused instead of returning meaningless scores.

Filters are built from plain dicts by :func:`build_filter`: field names are checked
against the schema and values are escaped, so user text never becomes expression syntax.
Small numpy arrays (e.g. a fitted PCA whitening matrix) can be stored *with* the
collection (:meth:`MotionStore.save_array`, :mod:`motionmatch.index.arrays`) so every client
transforms queries the same way.

Around it: :mod:`motionmatch.index.schema` (fields, properties, :class:`IndexConfig` with the
bench-recommended defaults), :mod:`motionmatch.index.filters` (expressions), :mod:`motionmatch.index.connection`
(Milvus Lite process bookkeeping, transient-failure retries, the server's version).

Size: a little over 600 lines because MotionStore is one object whose every method shares the connection,
the collection's cached description and its error wrapping; what could move out already has (schema,
filters, connection, arrays, hybrid search, the frame store's rows in :mod:`motionmatch.index.frames`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import config
from . import connection as lite
from ..errors import EncoderMismatchError, MotionMatchError, ParameterError, StoreError
from .filters import and_expressions, build_filter, not_video
from .connection import quiet_library_errors, retry_transient
from .schema import (
    ARRAYS_SUFFIX, FRAMES_SUFFIX, HIT_FIELDS, NAME_RE, OPTIONAL_SCALAR_FIELDS, PRIMARY_FIELD, PROP_CLIP_SPEC, PROP_DIM,
    PROP_ENCODER_ID, PROP_PREPROCESSING, PROP_SCHEMA_VERSION, SCALAR_FIELDS, SCHEMA_VERSION, TEXT_FIELDS, VECTOR_FIELD, Hit,
    IndexConfig, MAX_TOPK, build_schema, check_dim, hits_from_results, scalar_columns, vector_matrix,
)
from .arrays import StoredArrays
from .hybrid import HybridSearch
from ..table import canonical_json
from ..validation import check_scalar

# Encoders whose clips may show nothing to describe (coverage 0): their collections are searched with
# `coverage > 0`, so a clip without a person is never retrieved by the pose channel.
COVERAGE_FILTERED_ENCODERS = ("pose:",)
NO_CONTENT_FILTER = "coverage > 0"
QUERY_BATCH = 1000

_SERVER_SCHEMES = ("http://", "https://", "tcp://")


# ----------------------------------------------------------------------------- the store
class MotionStore(StoredArrays, HybridSearch):
    """A Milvus collection of clip embeddings that knows which encoder produced them.

    ``uri`` is a local path ending in ``.db`` (Milvus Lite, embedded; one process per file)
    or ``http(s)://host:port`` / ``tcp://host:port`` (a Milvus server or cluster).
    """

    def __init__(self, uri: str | Path = "", collection: str = "", timeout_s: float = 10,
                 index: IndexConfig | None = None, grpc_options: Mapping[str, Any] | None = None):
        """Open (or prepare) ``collection`` at ``uri``; every parameter is checked here, once.

        ``uri`` and ``collection`` default to :func:`motionmatch.config.setting` (``MOTIONMATCH_MILVUS_URI``,
        ``MOTIONMATCH_COLLECTION``, then the package defaults), read when the store is made.
        ``index`` is how new collections are indexed and searched (:class:`IndexConfig`; default HNSW
        M=16 efConstruction=100, ef=64 as bench/RESULTS.md recommends). ``grpc_options`` are passed to
        the gRPC channel (e.g. ``{"grpc.keepalive_time_ms": 60000}``) for servers with stricter ping policies.
        """
        uri = config.setting("milvus_uri", uri)
        collection = config.setting("collection", collection)
        if not NAME_RE.match(collection) or len(collection) > 255 - max(len(ARRAYS_SUFFIX), len(FRAMES_SUFFIX)):
            raise ParameterError(f"collection name {collection!r} is not valid: use letters, digits and '_', "
                                 f"starting with a letter or '_', at most {255 - len(ARRAYS_SUFFIX)} characters")
        self.timeout_s = check_scalar(timeout_s, "timeout_s (seconds)", float, min_value=0, include_min=False)
        if index is None:
            index = IndexConfig()
        if not isinstance(index, IndexConfig):
            raise ParameterError(f"index must be a motionmatch.index.schema.IndexConfig, e.g. IndexConfig('HNSW', "
                                 f"{{'M': 16, 'efConstruction': 100}}, {{'ef': 64}}), got {index!r}")
        if grpc_options is not None and not isinstance(grpc_options, Mapping):
            raise ParameterError(f"grpc_options must be a dict of gRPC channel options, got {grpc_options!r}")
        self.index = index
        self.grpc_options = dict(grpc_options or {})
        self.collection = collection
        self.is_local = not uri.lower().startswith(_SERVER_SCHEMES)
        if self.is_local:
            if "://" in uri:
                raise ParameterError(f"Milvus URI {uri!r} has an unknown scheme; use a local path ending in .db "
                                     "(Milvus Lite) or http://host:19530 (a Milvus server)")
            if not uri.endswith(".db"):
                raise ParameterError(f"Milvus Lite path {uri!r} must end in .db (e.g. data/interim/motionmatch.db); "
                                     "for a server give http://host:19530")
            uri = str(Path(uri).expanduser().resolve())
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self._info_cache: dict | None = None
        self._index_types: dict[str, str] = {}
        self._loaded: set[str] = set()
        self._client = None
        self._frames: MotionStore | None = None
        self._client = self._connect()

    # ------------------------------------------------------------------ connection
    def _new_client(self):
        """A MilvusClient; the handshake is retried on a transient UNAVAILABLE (pymilvus does not retry it)."""
        from pymilvus import MilvusClient

        options = {"grpc_options": self.grpc_options} if self.grpc_options else {}
        return retry_transient("connecting", self.uri,
                               lambda: MilvusClient(uri=self.uri, timeout=self.timeout_s, **options))

    def _connect(self):
        if self.is_local:
            with lite.lite_lock, quiet_library_errors():
                try:
                    client = self._new_client()
                except Exception as error:  # noqa: BLE001 - pymilvus raises several kinds
                    if lite.file_is_locked(self.uri):
                        raise StoreError(
                            f"another process has {self.uri} open; Milvus Lite allows one process per file. "
                            f"To share it, close that process, run `milvus-lite server --data-dir {self.uri} "
                            f"--port 19530` (it serves the same data) and use --milvus-uri http://127.0.0.1:19530 "
                            f"in every process"
                        ) from error
                    raise StoreError(f"could not open the Milvus Lite file {self.uri}: {error}. Check the path is a "
                                     "Milvus Lite 3 data folder (older single-file .db files need re-indexing "
                                     "into a new path)") from error
                lite.opened(self.uri)
            return client
        try:
            client = self._new_client()
        except Exception as error:  # noqa: BLE001
            raise StoreError(f"could not reach the Milvus server at {self.uri}: {error}. Start the server "
                             f"(e.g. `milvus-lite server --data-dir DIR --port 19530`, or your Milvus deployment) "
                             f"or check --milvus-uri") from error
        return client

    @property
    def client(self):
        """The underlying ``pymilvus.MilvusClient`` (for advanced use; errors are not wrapped)."""
        if self._client is None:
            raise StoreError(f"the store for {self.collection} at {self.uri} is closed; open a new MotionStore")
        return self._client

    def _call(self, action: str, method: str, *args, **kwargs):
        """Run one client call, turning any pymilvus failure into a StoreError that says where."""
        try:
            with quiet_library_errors():
                return getattr(self.client, method)(*args, **kwargs)
        except MotionMatchError:
            raise
        except Exception as error:  # noqa: BLE001
            text = str(error)
            hint = "check the request and the server log"
            if "unavailable" in text.lower() or "connect" in text.lower() or "deadline" in text.lower():
                hint = ("is the Milvus server still running? Restart it (`milvus-lite server --data-dir DIR --port PORT`) "
                        "or check --milvus-uri")
            raise StoreError(f"{action} failed on collection '{self.collection}' at {self.uri}: {text} — {hint}") from error

    def frame_store(self) -> "MotionStore | None":
        """This collection's frame store (:mod:`motionmatch.index.frames`), opened once and closed with this
        store; None when the collection has none (it was not made from dense windows)."""
        if self._frames is None:
            frames = MotionStore(self.uri, self.collection + FRAMES_SUFFIX, timeout_s=self.timeout_s)
            if not frames.exists():
                frames.close()
                return None
            self._frames = frames
        return self._frames

    def close(self) -> None:
        """Close the connection; a Milvus Lite file is released for other processes once no store in this process uses it."""
        frames, self._frames = getattr(self, "_frames", None), None
        if frames is not None:
            frames.close()
        client, self._client = getattr(self, "_client", None), None
        if client is None:
            return
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        if self.is_local:
            lite.release(self.uri)

    def __enter__(self) -> "MotionStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best-effort cleanup
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        state = "closed" if self._client is None else ("lite" if self.is_local else "server")
        return f"MotionStore(uri={self.uri!r}, collection={self.collection!r}, {state})"

    # ------------------------------------------------------------------ collection
    def exists(self) -> bool:
        return bool(self._call("has_collection", "has_collection", self.collection))

    def _info(self, refresh: bool = False) -> dict:
        """describe_collection of the main collection (cached); StoreError when it does not exist."""
        if self._info_cache is None or refresh:
            if not self.exists():
                raise StoreError(f"collection '{self.collection}' does not exist at {self.uri}; index embeddings "
                                 f"first (`motionmatch index EMBEDDINGS --collection {self.collection}`), "
                                 "or check --collection and --milvus-uri")
            info = self._call("describe collection", "describe_collection", self.collection)
            if PROP_ENCODER_ID not in (info.get("properties") or {}):
                raise StoreError(f"collection '{self.collection}' at {self.uri} was not created by MotionMatch "
                                 "(it records no encoder); use another --collection")
            self._info_cache = info
        return self._info_cache

    def _text_fields(self) -> list[str]:
        """The optional :data:`~motionmatch.index.schema.TEXT_FIELDS` this collection carries."""
        return [f["name"] for f in self._info()["fields"] if f["name"] in TEXT_FIELDS]

    def _scalar_fields(self) -> list[str]:
        """The :data:`~motionmatch.index.schema.SCALAR_FIELDS` this collection has (one made before an optional
        field existed lacks it, and keeps working without it)."""
        have = {f["name"] for f in self._info()["fields"]}
        return [name for name in SCALAR_FIELDS if name in have or name not in OPTIONAL_SCALAR_FIELDS]

    def content_filter(self) -> str:
        """``coverage > 0`` for a collection of an encoder whose clips may show nothing (the pose channel) that
        stores coverage; '' otherwise. Every search of this store adds it."""
        encoder_id = self._info()["properties"][PROP_ENCODER_ID]
        if encoder_id.startswith(COVERAGE_FILTERED_ENCODERS) and "coverage" in self._scalar_fields():
            return NO_CONTENT_FILTER
        return ""

    def _vector_fields(self) -> dict[str, int]:
        from pymilvus import DataType

        return {f["name"]: int(f["params"]["dim"]) for f in self._info()["fields"] if f["type"] == DataType.FLOAT_VECTOR}

    def _ready(self, name: str | None = None) -> None:
        """Load a collection into memory once (a reopened Milvus Lite file starts released)."""
        name = name or self.collection
        if name not in self._loaded:
            self._call("load collection", "load_collection", name)
            self._loaded.add(name)

    def encoder_info(self) -> dict:
        """What the collection records: encoder_id, dim, preprocessing, schema_version, clip_spec, vector_fields, index_type."""
        properties = self._info()["properties"]
        clip_spec = properties.get(PROP_CLIP_SPEC)
        index = self._call("describe index", "describe_index", self.collection, VECTOR_FIELD) or {}
        return {
            "encoder_id": properties[PROP_ENCODER_ID],
            "dim": int(properties[PROP_DIM]),
            "preprocessing": json.loads(properties[PROP_PREPROCESSING]),
            "schema_version": properties.get(PROP_SCHEMA_VERSION, ""),
            "clip_spec": json.loads(clip_spec) if clip_spec else None,
            "vector_fields": self._vector_fields(),
            "index_type": index.get("index_type", ""),
        }

    def describe(self) -> dict:
        """A summary for people: where, what encoder, how many rows and videos, stored arrays."""
        summary: dict[str, Any] = {"uri": self.uri, "mode": "Milvus Lite" if self.is_local else "server",
                                   "collection": self.collection, "exists": self.exists()}
        if summary["exists"]:
            summary.update(self.encoder_info())
            summary["rows"] = self.count()
            summary["videos"] = len(self.videos())
            summary["arrays"] = {name: meta["shape"] for name, meta in self.list_arrays().items()}
        return summary

    def ensure_collection(self, encoder_id: str, dim: int, preprocessing: dict,
                          extra_vectors: Mapping[str, int] | None = None, index_type: str | None = None,
                          index_params: Mapping[str, Any] | None = None, recreate: bool = False,
                          clip_spec: Mapping[str, Any] | None = None, text_fields: Sequence[str] = ()) -> dict:
        """Create the collection if it is missing (idempotent), else check it holds this encoder's vectors.

        ``extra_vectors`` adds FLOAT_VECTOR fields (e.g. ``{"visual": 512}``) for hybrid search or
        projected vectors. ``recreate=True`` drops the collection (and its stored arrays) first.
        A new collection is indexed as the store's :class:`IndexConfig` says; ``index_type`` /
        ``index_params`` override it for this collection. ``text_fields`` adds optional
        :data:`~motionmatch.index.schema.TEXT_FIELDS` (payloads fetched with the rows). Returns :meth:`encoder_info`.

        Several writers may create the same collection on a server at the same moment; the
        slower one's create fails ("already exists") or finds it half made (no index yet).
        A collection that did not exist before this call is therefore retried for a few
        seconds while the server answers, then checked like any existing one.
        """
        if not isinstance(encoder_id, str) or not encoder_id:
            raise ParameterError(f"encoder_id must be a non-empty string, got {encoder_id!r}")
        dim = check_dim(dim)
        if not isinstance(preprocessing, Mapping):
            raise ParameterError(f"preprocessing must be a dict describing the encoder's input, got {type(preprocessing).__name__}")
        extra = {}
        for name, extra_dim in dict(extra_vectors or {}).items():
            if not isinstance(name, str) or not NAME_RE.match(name) or name in SCALAR_FIELDS or name == VECTOR_FIELD:
                raise ParameterError(f"extra vector field name {name!r} is not valid (letters, digits, '_'; not one of "
                                     f"{', '.join([VECTOR_FIELD, *SCALAR_FIELDS])})")
            extra[name] = check_dim(extra_dim, f"the dimension of extra vector '{name}'")
        text_fields = tuple(text_fields)
        unknown = sorted(set(text_fields) - set(TEXT_FIELDS))
        if unknown:
            raise ParameterError(f"unknown text field(s) {unknown}; known: {', '.join(TEXT_FIELDS)}")
        index = self.index
        if index_type is not None or index_params is not None:
            index = IndexConfig(index_type or self.index.index_type, dict(index_params or {}))
        existed = self.exists()
        for attempt in range(25):
            try:
                return self._ensure_collection_once(encoder_id, dim, preprocessing, extra, index, recreate, clip_spec,
                                                    text_fields)
            except StoreError:
                if existed or attempt == 24:
                    raise
                recreate = False  # dropped already; another writer may have made it since
                self.exists()  # raises at once when the server itself is gone
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def _ensure_collection_once(self, encoder_id: str, dim: int, preprocessing: Mapping, extra_vectors: dict[str, int],
                                index: IndexConfig, recreate: bool, clip_spec: Mapping[str, Any] | None,
                                text_fields: tuple[str, ...] = ()) -> dict:
        if recreate:
            self.drop()
        if self.exists():
            self._info(refresh=True)  # another client may have recreated it
            self._check_encoder(encoder_id, dim, preprocessing, "ensure_collection")
            have = self._vector_fields()
            for name, extra_dim in extra_vectors.items():
                if have.get(name) != extra_dim:
                    held = f"dimension {have[name]}" if name in have else "no such field"
                    raise EncoderMismatchError(
                        f"collection '{self.collection}' at {self.uri} has {held} for vector field '{name}', but "
                        f"{extra_dim} was asked; use another --collection, or re-index with --recreate")
            missing = sorted(set(text_fields) - set(self._text_fields()))
            if missing:
                raise EncoderMismatchError(f"collection '{self.collection}' at {self.uri} has no field(s) {missing}; "
                                           "re-index with --recreate to add them")
            if clip_spec is not None and PROP_CLIP_SPEC not in self._info()["properties"]:
                self._set_properties({PROP_CLIP_SPEC: canonical_json(dict(clip_spec))})
            self._ready()
            return self.encoder_info()

        schema, indexes = build_schema(self.client, dim, extra_vectors, index, text_fields)
        properties = {PROP_ENCODER_ID: encoder_id, PROP_DIM: str(dim),
                      PROP_PREPROCESSING: canonical_json(dict(preprocessing)), PROP_SCHEMA_VERSION: SCHEMA_VERSION}
        if clip_spec is not None:
            properties[PROP_CLIP_SPEC] = canonical_json(dict(clip_spec))
        self._call("create collection", "create_collection", self.collection, schema=schema,
                   index_params=indexes, properties=properties, consistency_level="Session")  # read-your-writes
        self._info_cache = None
        self._ready()
        return self.encoder_info()

    def _set_properties(self, properties: dict[str, str], attempts: int = 4) -> None:
        """Set collection properties (idempotent). Retried when two clients alter the same collection at once:
        ``milvus-lite server`` writes each change through one ``schema.json.tmp`` per collection, so the second
        of two concurrent renames finds the file gone (seen in CI with two ``motionmatch index`` runs)."""
        for attempt in range(attempts):
            try:
                self._call("alter collection properties", "alter_collection_properties", self.collection,
                           properties=properties)
                break
            except StoreError as error:
                if attempt == attempts - 1 or "schema.json" not in str(error):
                    raise
                time.sleep(0.2 * (attempt + 1))
        self._info_cache = None

    def _check_encoder(self, encoder_id: str | None, dim: int | None, preprocessing: Mapping | None, action: str) -> None:
        """Raise EncoderMismatchError when the request was embedded differently from the collection."""
        properties = self._info()["properties"]
        held_id, held_dim = properties[PROP_ENCODER_ID], int(properties[PROP_DIM])
        held_pre = json.loads(properties[PROP_PREPROCESSING])
        problems = []
        if encoder_id is not None and encoder_id != held_id:
            problems.append(f"encoder {encoder_id!r} but the collection holds {held_id!r}")
        if dim is not None and int(dim) != held_dim:
            problems.append(f"dimension {dim} but the collection holds {held_dim}")
        if preprocessing is not None and canonical_json(dict(preprocessing)) != canonical_json(held_pre):
            keys = sorted(set(preprocessing) | set(held_pre))
            differ = [k for k in keys if canonical_json(preprocessing.get(k)) != canonical_json(held_pre.get(k))]
            shown = "; ".join(f"{k}: asked {preprocessing.get(k)!r}, held {held_pre.get(k)!r}" for k in differ[:5])
            problems.append(f"different preprocessing ({shown})")
        if problems:
            raise EncoderMismatchError(
                f"{action} on collection '{self.collection}' at {self.uri} uses {'; '.join(problems)}. "
                f"Vectors from different encoders or preprocessing are not comparable: use another --collection "
                f"for this encoder, or re-index with --recreate to replace the collection's contents")

    def drop(self) -> None:
        """Drop the collection, its stored arrays and its frame store (no error when absent)."""
        for name in (self.collection, self.arrays_collection, self.collection + FRAMES_SUFFIX):
            if self._call("has_collection", "has_collection", name):
                self._call("drop collection", "drop_collection", name)
            self._loaded.discard(name)
        self._info_cache = None
        self._index_types.clear()

    # ------------------------------------------------------------------ writing
    def upsert(self, table: pd.DataFrame, batch_size: int = 512, vector_columns: Mapping[str, str] | None = None,
               encoder_id: str | None = None, preprocessing: Mapping | None = None, progress: bool = True) -> int:
        """Insert or replace rows of an embeddings table (idempotent on ``clip_id``); returns rows written.

        ``vector_columns`` maps vector field -> table column; by default every vector field of
        the collection is read from the column of the same name. A missing ``clip_id`` column is
        derived with :func:`make_clip_id`.
        """
        batch_size = check_scalar(batch_size, "batch_size", int, min_value=1)
        if not isinstance(table, pd.DataFrame):
            raise ParameterError(f"upsert expects a pandas DataFrame (the embeddings table), got {type(table).__name__}")
        properties = self._info(refresh=True)["properties"]  # another client may have recreated it
        held_id = properties[PROP_ENCODER_ID]
        self._check_encoder(encoder_id, None, preprocessing, "upsert")
        if "encoder_id" in table.columns and len(table):
            table_ids = sorted(set(table["encoder_id"].astype(str)))
            if table_ids != [held_id]:
                raise EncoderMismatchError(
                    f"upsert into collection '{self.collection}' at {self.uri}: the table holds embeddings from "
                    f"{table_ids}, the collection holds {held_id!r}; use another --collection, or re-index with --recreate")
        if len(table) == 0:
            return 0
        vector_dims = self._vector_fields()
        vector_columns = dict(vector_columns or {name: name for name in vector_dims})
        unknown = sorted(set(vector_columns) - set(vector_dims))
        if unknown:
            raise ParameterError(f"vector_columns names fields {unknown} that the collection does not have; "
                                 f"its vector fields: {sorted(vector_dims)}")
        unmapped = sorted(set(vector_dims) - set(vector_columns))
        if unmapped:
            raise ParameterError(f"collection '{self.collection}' needs vectors for {unmapped}; add them to vector_columns")
        required = ["video_path", "clip_index", "start_s", "end_s", *vector_columns.values()]
        missing = [c for c in required if c not in table.columns]
        if missing:
            raise ParameterError(f"the embeddings table lacks columns {missing}; it has {list(table.columns)}")

        columns = scalar_columns(table, held_id)
        present = set(self._scalar_fields())  # a collection made before `coverage` existed takes rows without it
        columns = {name: values for name, values in columns.items() if name in present}
        for name in self._text_fields():
            if name not in table.columns:
                raise ParameterError(f"collection '{self.collection}' stores '{name}' with every row; the table has "
                                     f"no such column")
            columns[name] = np.array([str(v) for v in table[name]], dtype=object)
        where = f"collection '{self.collection}' at {self.uri}"
        vectors = {field: vector_matrix(table[column], field, column, vector_dims[field], where)
                   for field, column in vector_columns.items()}
        duplicated = columns["clip_id"][pd.Series(columns["clip_id"]).duplicated().to_numpy()]
        if len(duplicated):
            raise ParameterError(f"the table has {len(duplicated)} duplicate clip_id values (e.g. {duplicated[0]}); "
                                 "each clip must appear once — deduplicate the table")
        self._ready()
        written = 0
        with tqdm(total=len(table), unit="clip", desc=f"upsert {self.collection}", disable=not progress) as bar:
            for start in range(0, len(table), int(batch_size)):
                stop = min(start + int(batch_size), len(table))
                rows = [{**{name: values[i] for name, values in columns.items()},
                         **{field: matrix[i].tolist() for field, matrix in vectors.items()}} for i in range(start, stop)]
                self._call(f"upsert of rows {start}-{stop - 1}", "upsert", self.collection, rows)
                written += stop - start
                bar.update(stop - start)
        return written

    def delete_videos(self, video_paths: Iterable[str | Path]) -> int:
        """Delete every clip of the given videos; returns how many rows were removed."""
        paths = sorted({str(p) for p in ([video_paths] if isinstance(video_paths, (str, Path)) else video_paths)})
        if not paths or not self.exists():
            return 0
        self._ready()
        removed = 0
        for start in range(0, len(paths), 200):
            expression = build_filter({"video_path": paths[start:start + 200]})
            before = self._count(expression)
            if before:
                self._call("delete", "delete", self.collection, filter=expression)
            removed += before
        return removed

    # ------------------------------------------------------------------ reading
    def _count(self, expression: str = "") -> int:
        rows = self._call("count", "query", self.collection, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def count(self) -> int:
        """Rows in the collection (0 when it does not exist yet)."""
        if not self.exists():
            return 0
        self._ready()
        return self._count()

    def _iter_rows(self, name: str, fields: list[str], expression: str = "") -> Iterator[list[dict]]:
        """All matching rows in batches (query_iterator: no 16,384-row window limit)."""
        self._ready(name)
        iterator = self._call("query iterator", "query_iterator", name, batch_size=QUERY_BATCH,
                              filter=expression, output_fields=fields)
        try:
            while True:
                try:
                    batch = iterator.next()
                except Exception as error:  # noqa: BLE001
                    raise StoreError(f"reading rows of '{name}' at {self.uri} failed: {error}") from error
                if not batch:
                    break
                yield list(batch)
        finally:
            iterator.close()

    def fetch_table(self, fields: Sequence[str] | None = None,
                    filters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
        """Everything stored, or the rows ``filters`` match (:func:`build_filter`; ``[{"video_path": v, "start_s":
        (lo, hi)}, ...]`` fetches time spans of given videos), as an embeddings table (float32 vectors) sorted by
        video and clip, i.e. each video's windows in time order."""
        expression = build_filter(filters)
        vector_fields = self._vector_fields()
        valid = [*self._scalar_fields(), *self._text_fields(), *vector_fields]
        wanted = list(fields) if fields is not None else valid
        unknown = [f for f in wanted if f not in valid]
        if unknown:
            raise ParameterError(f"unknown fields {unknown}; valid: {', '.join(valid)}")
        query_fields = list(dict.fromkeys([PRIMARY_FIELD, *wanted]))
        rows: list = []
        if expression:  # a few videos' windows: one query call (the iterator costs several round trips)
            self._ready()
            rows = list(self._call("query", "query", self.collection, filter=expression, output_fields=query_fields,
                                   limit=MAX_TOPK))
        if not expression or len(rows) >= MAX_TOPK:
            rows = [row for batch in self._iter_rows(self.collection, query_fields, expression) for row in batch]
        frame = pd.DataFrame(rows, columns=query_fields)
        for field in vector_fields:
            if field in frame:
                frame[field] = [np.asarray(v, dtype=np.float32) for v in frame[field]]
        if fields is None:
            frame.insert(len(self._scalar_fields()), "encoder_id", self._info()["properties"][PROP_ENCODER_ID])
        sort_by = [c for c in ("video_path", "clip_index", PRIMARY_FIELD) if c in frame]
        frame = frame.sort_values(sort_by, kind="stable").reset_index(drop=True)
        return frame[wanted if fields is not None else list(frame.columns)]

    def videos(self) -> pd.DataFrame:
        """One row per stored video: video_path, video_fingerprint, n_clips."""
        columns = ["video_path", "video_fingerprint", "n_clips"]
        if not self.exists():
            return pd.DataFrame(columns=columns)
        rows = [row for batch in self._iter_rows(self.collection, ["video_path", "video_fingerprint"]) for row in batch]
        if not rows:
            return pd.DataFrame(columns=columns)
        frame = pd.DataFrame(rows)
        grouped = frame.groupby("video_path", sort=True).agg(video_fingerprint=("video_fingerprint", "first"),
                                                             n_clips=("video_fingerprint", "size"))
        return grouped.reset_index()[columns]

    # ------------------------------------------------------------------ search
    def _query_matrix(self, vectors: Any, field: str, dims: dict[str, int]) -> np.ndarray:
        if field not in dims:
            raise ParameterError(f"'{field}' is not a vector field of collection '{self.collection}'; "
                                 f"vector fields: {sorted(dims)}")
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise ParameterError(f"query vectors for '{field}' must be shaped (n, dim) with n >= 1, got {matrix.shape}")
        if matrix.shape[1] != dims[field]:
            raise EncoderMismatchError(
                f"query vectors are {matrix.shape[1]}-d but field '{field}' of collection '{self.collection}' at "
                f"{self.uri} is {dims[field]}-d: the query was embedded by another encoder; embed it with "
                f"{self._info()['properties'][PROP_ENCODER_ID]!r} or search another --collection")
        if not np.isfinite(matrix).all():
            raise ParameterError(f"query vectors for '{field}' contain NaN or infinite values")
        return matrix

    @staticmethod
    def _check_k(k: Any, name: str = "k") -> int:
        return check_scalar(k, name, int, min_value=1, max_value=MAX_TOPK)

    def _search_params(self, field: str, k: int) -> dict:
        if field not in self._index_types:
            index = self._call("describe index", "describe_index", self.collection, field) or {}
            self._index_types[field] = str(index.get("index_type", "FLAT")).upper()
        return self.index.search_params_for(self._index_types[field], k)

    @staticmethod
    def _exclusions(exclude_video: Any, n_queries: int) -> list[str]:
        """One extra expression per query excluding its own video ('' when none)."""
        if exclude_video is None:
            return [""] * n_queries
        if isinstance(exclude_video, (str, Path)):
            return [not_video(exclude_video)] * n_queries
        paths = list(exclude_video)
        if len(paths) != n_queries:
            raise ParameterError(f"exclude_video has {len(paths)} paths for {n_queries} queries; give one per query, "
                                 "or one string for all")
        return [not_video(p) if p else "" for p in paths]

    def search(self, vectors: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None,
               group_by_video: bool = False, anns_field: str = VECTOR_FIELD, encoder_id: str | None = None,
               preprocessing: Mapping | None = None, exclude_video: str | Sequence[str] | None = None
               ) -> list[list[Hit]]:
        """Nearest clips (cosine) for each query vector; one list of hits per query, best first.

        ``group_by_video`` keeps the best clip per video; ``exclude_video`` (one path, or one per
        query) drops hits from the query's own video; ``filters`` see :func:`build_filter`. A pose collection
        never returns clips with no person (:meth:`content_filter`).
        """
        k = self._check_k(k)
        self._check_encoder(encoder_id, None, preprocessing, "search")
        matrix = self._query_matrix(vectors, anns_field, self._vector_fields())
        expression = and_expressions(build_filter(filters), self.content_filter())
        exclusions = self._exclusions(exclude_video, len(matrix))
        self._ready()
        params = self._search_params(anns_field, k)
        grouping = {"group_by_field": "video_path", "group_size": 1} if group_by_video else {}
        # queries sharing one filter go in one call; distinct per-query exclusions need one call each
        batches = [(list(range(len(matrix))), exclusions[0])] if len(set(exclusions)) == 1 else \
            [([i], exclusions[i]) for i in range(len(matrix))]
        results: list[list[Hit]] = [[] for _ in range(len(matrix))]
        for indices, exclusion in batches:
            raw = self._call("search", "search", self.collection, data=matrix[indices].tolist(), limit=k,
                             filter=and_expressions(expression, exclusion), output_fields=HIT_FIELDS, search_params=params,
                             anns_field=anns_field, **grouping)
            for i, hits in zip(indices, hits_from_results(raw)):
                results[i] = hits
        return results
