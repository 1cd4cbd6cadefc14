"""MotionStore: the Milvus wrapper (a Milvus Lite ``.db`` path or a server / cluster URI).

One ``MilvusClient`` per store. The collection records which encoder made its vectors
(encoder id, dimension, canonical preprocessing JSON) in its properties, so inserts and
queries embedded any other way are refused instead of returning meaningless scores.

Filters are built from plain dicts by :func:`build_filter`: field names are checked
against the schema and values are escaped, so user text never becomes expression syntax.
Small numpy arrays (e.g. a fitted PCA whitening matrix) can be stored *with* the
collection (:meth:`MotionStore.save_array`) so every client transforms queries the same way.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
import logging
import math
import os
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import config
from .errors import EncoderMismatchError, MotionMatchError, ParameterError, StoreError

SCHEMA_VERSION = "1"
PROPERTY_PREFIX = "motionmatch."
PROP_ENCODER_ID = PROPERTY_PREFIX + "encoder_id"
PROP_DIM = PROPERTY_PREFIX + "dim"
PROP_PREPROCESSING = PROPERTY_PREFIX + "preprocessing"
PROP_SCHEMA_VERSION = PROPERTY_PREFIX + "schema_version"
PROP_CLIP_SPEC = PROPERTY_PREFIX + "clip_spec"
PROP_ARRAY_PREFIX = PROPERTY_PREFIX + "array."

PRIMARY_FIELD = "clip_id"
VECTOR_FIELD = "embedding"
ARRAYS_SUFFIX = "__arrays"

# scalar fields: name -> (kind, max_length in UTF-8 bytes for strings)
SCALAR_FIELDS: dict[str, tuple[str, int]] = {
    "clip_id": ("str", 64),
    "video_path": ("str", 4096),
    "video_fingerprint": ("str", 64),
    "clip_index": ("int", 0),
    "start_s": ("float", 0),
    "end_s": ("float", 0),
    "padded_frames": ("int", 0),
    "label": ("str", 512),
    "domain": ("str", 512),
    "group": ("str", 512),
    "split": ("str", 512),
}
HIT_FIELDS = ["clip_id", "video_path", "clip_index", "start_s", "end_s", "label", "domain", "group", "split"]

INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")
# Chosen by bench/bench_search.py's `recommend` (bench/RESULTS.md; a test keeps them equal): Milvus Lite's
# FLAT is 18-63x slower than the numpy floor; at 1e5 vectors HNSW ef=32/64/128 and IVF_FLAT lie within
# 10 % of each other (Milvus Lite's per-call cost dominates), and HNSW M=16 ef=64 is the fastest of them
# that keeps recall@10 >= 0.99 at 1e4 and 1e5 (IVF_FLAT nlist=128 nprobe=8 fell to 0.94 at 1e4).
DEFAULT_INDEX_TYPE = "HNSW"
DEFAULT_INDEX_PARAMS: dict[str, dict] = {"FLAT": {}, "HNSW": {"M": 16, "efConstruction": 100}, "IVF_FLAT": {"nlist": 128}}
# Search-time parameters; HNSW's ef is raised to k when k is larger (HNSW needs ef >= k).
DEFAULT_SEARCH_PARAMS: dict[str, dict] = {"FLAT": {}, "HNSW": {"ef": 64}, "IVF_FLAT": {"nprobe": 32}}
MAX_TOPK = 16384  # Milvus caps limit (and offset + limit) per request
QUERY_BATCH = 1000

ARRAY_CHUNK_BYTES = 48_000  # base64 -> 64,000 chars, under VARCHAR's 65,535
ARRAY_MAX_BYTES = 64 * 2**20
ARRAY_WRITE_BATCH = 16  # chunks per upsert call (~1 MB)



class _DropIteratorTimestampWarning(logging.Filter):
    """Milvus Lite has no MVCC timestamp; pymilvus warns on every query_iterator. The fallback is fine."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_DropIteratorTimestampWarning())

_wrapping = threading.local()


class _DropErrorsWeWrap(logging.Filter):
    """pymilvus logs a full traceback for every failed RPC; inside MotionStore the failure is re-raised as
    a StoreError that says what to do, so the log record is dropped (only on this thread, only then)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_wrapping, "active", False)


for _logger_name in ("pymilvus.decorators", "pymilvus.client.connection_manager", "milvus_lite.server_manager"):
    logging.getLogger(_logger_name).addFilter(_DropErrorsWeWrap())


@contextmanager
def _quiet_library_errors() -> Iterator[None]:
    previous = getattr(_wrapping, "active", False)
    _wrapping.active = True
    try:
        yield
    finally:
        _wrapping.active = previous

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
_ARRAY_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
_SERVER_SCHEMES = ("http://", "https://", "tcp://")


@dataclass
class Hit:
    """One search result: a clip and its similarity to the query (cosine, or the ranker's score)."""

    clip_id: str
    score: float
    video_path: str
    clip_index: int
    start_s: float
    end_s: float
    label: str
    domain: str
    group: str
    split: str = ""


def make_clip_id(video_path: str | Path, clip_index: int, encoder_id: str) -> str:
    """Deterministic primary key (40 hex chars) of one clip of one video under one encoder."""
    key = f"{Path(video_path).as_posix()}|{int(clip_index)}|{encoder_id}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value (sorted keys, no spaces) used to compare preprocessing."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise ParameterError(f"preprocessing must be JSON-serialisable (str, numbers, lists, dicts): {error}") from error


# ----------------------------------------------------------------------------- filters
def quote_string(value: str) -> str:
    """A Milvus expression string literal holding ``value`` exactly.

    Milvus Lite 3 understands only the escapes ``\\\\ \\" \\n \\r \\t`` (no ``\\u``), and
    any other character may appear raw, so exactly those five are escaped.
    """
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def _literal(field: str, kind: str, value: Any) -> str:
    if kind == "str":
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str):
            raise ParameterError(f"filter on '{field}' expects text, got {value!r} ({type(value).__name__}); "
                                 f"pass it as a string, e.g. {{'{field}': {str(value)!r}}}")
        return quote_string(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"filter on '{field}' expects a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(float(value)):
        raise ParameterError(f"filter on '{field}' expects a finite number, got {value!r}")
    if kind == "int":
        if float(value) != int(value):
            raise ParameterError(f"filter on '{field}' expects a whole number, got {value!r}")
        return str(int(value))
    return repr(float(value))


def build_filter(filters: Mapping[str, Any] | None, fields: Mapping[str, tuple[str, int]] = SCALAR_FIELDS) -> str:
    """Translate ``{"domain": "studio", "label": ["a", "b"], "start_s": (0, 5)}`` into a safe expression.

    A value matches exactly; a list or set means "any of"; a tuple ``(lo, hi)`` is an
    inclusive range on a numeric field (``None`` leaves that end open). Conditions are
    ANDed. Field names must be scalar fields of the schema; values are escaped.
    """
    if not filters:
        return ""
    if not isinstance(filters, Mapping):
        raise ParameterError(f"filters must be a dict of field -> value, got {type(filters).__name__}")
    clauses = []
    for field, value in filters.items():
        if field not in fields:
            raise ParameterError(f"unknown filter field {field!r}; valid fields: {', '.join(sorted(fields))}")
        kind = fields[field][0]
        if value is None:
            raise ParameterError(f"filter on '{field}' has no value (None); drop the key or give a value")
        if isinstance(value, tuple):
            if kind == "str" or len(value) != 2:
                raise ParameterError(f"filter on '{field}': a tuple means a range (lo, hi) on a numeric field "
                                     f"({', '.join(f for f, (k, _) in fields.items() if k != 'str')}); "
                                     f"use a list for 'any of', got {value!r}")
            low, high = value
            parts = []
            if low is not None:
                parts.append(f"{field} >= {_literal(field, kind, low)}")
            if high is not None:
                parts.append(f"{field} <= {_literal(field, kind, high)}")
            if not parts:
                raise ParameterError(f"filter on '{field}': range (None, None) restricts nothing; drop the key")
            clauses.append("(" + " and ".join(parts) + ")")
        elif isinstance(value, (list, set, frozenset, np.ndarray, pd.Series)):
            items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
            clauses.append(f"({field} in [{', '.join(_literal(field, kind, item) for item in items)}])")
        else:
            clauses.append(f"({field} == {_literal(field, kind, value)})")
    return " and ".join(clauses)


def _and(*expressions: str) -> str:
    parts = [e for e in expressions if e]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({e})" for e in parts)


# ----------------------------------------------------------------------------- Lite bookkeeping
_lite_lock = threading.Lock()
_lite_open_counts: dict[str, int] = {}


def _lite_file_is_locked(path: str) -> bool:
    """True when another process holds Milvus Lite's advisory lock on ``path``."""
    lock_path = Path(path) / "LOCK"
    if sys.platform == "win32" or not lock_path.exists():
        return False
    import fcntl

    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _release_lite(path: str) -> None:
    """Stop this process's embedded Milvus Lite for ``path`` once no store uses it (frees the file lock)."""
    with _lite_lock:
        remaining = _lite_open_counts.get(path, 0) - 1
        if remaining > 0:
            _lite_open_counts[path] = remaining
            return
        _lite_open_counts.pop(path, None)
    try:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)
    except Exception:  # noqa: BLE001 - best effort; the process exit releases it anyway
        pass


# ----------------------------------------------------------------------------- the store
class MotionStore:
    """A Milvus collection of clip embeddings that knows which encoder produced them.

    ``uri`` is a local path ending in ``.db`` (Milvus Lite, embedded; one process per file)
    or ``http(s)://host:port`` / ``tcp://host:port`` (a Milvus server or cluster).
    """

    def __init__(self, uri: str | Path = config.DEFAULT_MILVUS_URI, collection: str = config.DEFAULT_COLLECTION,
                 timeout_s: float = 10):
        uri = str(uri)
        if not _NAME_RE.match(collection or "") or len(collection) > 255 - len(ARRAYS_SUFFIX):
            raise ParameterError(f"collection name {collection!r} is not valid: use letters, digits and '_', "
                                 f"starting with a letter or '_', at most {255 - len(ARRAYS_SUFFIX)} characters")
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise ParameterError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        self.collection = collection
        self.timeout_s = float(timeout_s)
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
        self._client = self._connect()

    # ------------------------------------------------------------------ connection
    def _connect(self):
        from pymilvus import MilvusClient

        if self.is_local:
            with _lite_lock, _quiet_library_errors():
                try:
                    client = MilvusClient(uri=self.uri, timeout=self.timeout_s)
                except Exception as error:  # noqa: BLE001 - pymilvus raises several kinds
                    if _lite_file_is_locked(self.uri):
                        raise StoreError(
                            f"another process has {self.uri} open; Milvus Lite allows one process per file. "
                            f"To share it, close that process, run `milvus-lite server --data-dir {self.uri} "
                            f"--port 19530` (it serves the same data) and use --milvus-uri http://127.0.0.1:19530 "
                            f"in every process"
                        ) from error
                    raise StoreError(f"could not open the Milvus Lite file {self.uri}: {error}. Check the path is a "
                                     "Milvus Lite 3 data folder (older single-file .db files need re-indexing "
                                     "into a new path)") from error
                _lite_open_counts[self.uri] = _lite_open_counts.get(self.uri, 0) + 1
            return client
        try:
            with _quiet_library_errors():
                client = MilvusClient(uri=self.uri, timeout=self.timeout_s)
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

    @property
    def arrays_collection(self) -> str:
        return self.collection + ARRAYS_SUFFIX

    def _call(self, action: str, method: str, *args, **kwargs):
        """Run one client call, turning any pymilvus failure into a StoreError that says where."""
        try:
            with _quiet_library_errors():
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

    def close(self) -> None:
        """Close the connection; a Milvus Lite file is released for other processes once no store in this process uses it."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        if self.is_local:
            _release_lite(self.uri)

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
                          extra_vectors: Mapping[str, int] | None = None, index_type: str = DEFAULT_INDEX_TYPE,
                          index_params: Mapping[str, Any] | None = None, recreate: bool = False,
                          clip_spec: Mapping[str, Any] | None = None) -> dict:
        """Create the collection if it is missing, else check it holds this encoder's vectors.

        Several writers may create the same collection on a server at the same moment; the
        slower one's create fails ("already exists") or finds it half made (no index yet).
        A collection that did not exist before this call is therefore retried for a few
        seconds while the server answers, then checked like any existing one.
        """
        existed = self.exists()
        kwargs = {k: v for k, v in locals().items() if k not in ("self", "existed")}
        for attempt in range(25):
            try:
                return self._ensure_collection_once(**kwargs)
            except StoreError:
                if existed or attempt == 24:
                    raise
                self.exists()  # raises at once when the server itself is gone
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def _ensure_collection_once(self, encoder_id: str, dim: int, preprocessing: dict,
                          extra_vectors: Mapping[str, int] | None = None, index_type: str = DEFAULT_INDEX_TYPE,
                          index_params: Mapping[str, Any] | None = None, recreate: bool = False,
                          clip_spec: Mapping[str, Any] | None = None) -> dict:
        """Create the collection if missing (idempotent) or check it holds this encoder's vectors.

        ``extra_vectors`` adds FLOAT_VECTOR fields (e.g. ``{"visual": 512}``) for hybrid search or
        projected vectors. ``recreate=True`` drops the collection (and its stored arrays) first.
        Returns :meth:`encoder_info`.
        """
        if not isinstance(encoder_id, str) or not encoder_id:
            raise ParameterError(f"encoder_id must be a non-empty string, got {encoder_id!r}")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 < int(dim) <= 32768:
            raise ParameterError(f"dim must be a positive integer (<= 32768), got {dim!r}")
        if not isinstance(preprocessing, Mapping):
            raise ParameterError(f"preprocessing must be a dict describing the encoder's input, got {type(preprocessing).__name__}")
        extra_vectors = dict(extra_vectors or {})
        for name, extra_dim in extra_vectors.items():
            if not _NAME_RE.match(name) or name in SCALAR_FIELDS or name == VECTOR_FIELD:
                raise ParameterError(f"extra vector field name {name!r} is not valid (letters, digits, '_'; not one of "
                                     f"{', '.join([VECTOR_FIELD, *SCALAR_FIELDS])})")
            if isinstance(extra_dim, bool) or not isinstance(extra_dim, (int, np.integer)) or not 0 < int(extra_dim) <= 32768:
                raise ParameterError(f"extra vector '{name}' needs a positive integer dimension, got {extra_dim!r}")
        index_type = str(index_type).upper()
        if index_type not in INDEX_TYPES:
            raise ParameterError(f"index_type {index_type!r} is not supported; choose one of {', '.join(INDEX_TYPES)}")
        if recreate:
            self.drop()
        if self.exists():
            self._info(refresh=True)  # another client may have recreated it
            self._check_encoder(encoder_id, int(dim), preprocessing, "ensure_collection")
            have = self._vector_fields()
            for name, extra_dim in extra_vectors.items():
                if have.get(name) != int(extra_dim):
                    held = f"dimension {have[name]}" if name in have else "no such field"
                    raise EncoderMismatchError(
                        f"collection '{self.collection}' at {self.uri} has {held} for vector field '{name}', but "
                        f"{extra_dim} was asked; use another --collection, or re-index with --recreate")
            if clip_spec is not None and PROP_CLIP_SPEC not in self._info()["properties"]:
                self._set_properties({PROP_CLIP_SPEC: canonical_json(dict(clip_spec))})
            self._ready()
            return self.encoder_info()

        schema, indexes = self._schema(int(dim), {k: int(v) for k, v in extra_vectors.items()}, index_type,
                                       dict(index_params or DEFAULT_INDEX_PARAMS[index_type]))
        properties = {PROP_ENCODER_ID: encoder_id, PROP_DIM: str(int(dim)),
                      PROP_PREPROCESSING: canonical_json(dict(preprocessing)), PROP_SCHEMA_VERSION: SCHEMA_VERSION}
        if clip_spec is not None:
            properties[PROP_CLIP_SPEC] = canonical_json(dict(clip_spec))
        self._call("create collection", "create_collection", self.collection, schema=schema,
                   index_params=indexes, properties=properties)
        self._info_cache = None
        self._ready()
        return self.encoder_info()

    def _schema(self, dim: int, extra_vectors: dict[str, int], index_type: str, index_params: dict):
        from pymilvus import DataType, MilvusClient

        types = {"str": DataType.VARCHAR, "int": DataType.INT64, "float": DataType.FLOAT}
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                            description="MotionMatch clip embeddings")
        for name, (kind, max_length) in SCALAR_FIELDS.items():
            extra = {"max_length": max_length} if kind == "str" else {}
            schema.add_field(name, types[kind], is_primary=name == PRIMARY_FIELD, **extra)
        indexes = self.client.prepare_index_params()
        for name, field_dim in {VECTOR_FIELD: dim, **extra_vectors}.items():
            schema.add_field(name, DataType.FLOAT_VECTOR, dim=field_dim)
            indexes.add_index(name, index_type=index_type, metric_type="COSINE", params=index_params)
        return schema, indexes

    def _set_properties(self, properties: dict[str, str]) -> None:
        self._call("alter collection properties", "alter_collection_properties", self.collection, properties=properties)
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
        """Drop the collection and its stored arrays (no error when absent)."""
        for name in (self.collection, self.arrays_collection):
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
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

        columns = self._scalar_columns(table, held_id)
        vectors = {field: self._vector_matrix(table[column], field, column, vector_dims[field])
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

    def _scalar_columns(self, table: pd.DataFrame, encoder_id: str) -> dict[str, np.ndarray]:
        """Typed, validated scalar columns (object arrays of python values) ready for Milvus."""
        out: dict[str, np.ndarray] = {}
        for name, (kind, max_length) in SCALAR_FIELDS.items():
            if name == "clip_id" and name not in table.columns:
                out[name] = np.array([make_clip_id(p, i, encoder_id) for p, i in
                                      zip(table["video_path"].astype(str), table["clip_index"])], dtype=object)
                continue
            if name not in table.columns:
                out[name] = np.array(["" if kind == "str" else 0] * len(table), dtype=object)
                continue
            column = table[name]
            if kind == "str":
                values = np.array(["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
                                   for v in column], dtype=object)
                too_long = [v for v in values if len(v.encode("utf-8")) > max_length]
                if too_long:
                    raise ParameterError(f"column '{name}' has a value longer than {max_length} bytes "
                                         f"({too_long[0][:80]!r}...); shorten it")
                if name == "clip_id" and any(v == "" for v in values):
                    raise ParameterError("column 'clip_id' has empty values; fill them with make_clip_id()")
            else:
                numeric = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
                bad = ~np.isfinite(numeric)
                if bad.any():
                    raise ParameterError(f"column '{name}' has missing or non-numeric values "
                                         f"(row {int(np.flatnonzero(bad)[0])}: {column.iloc[int(np.flatnonzero(bad)[0])]!r})")
                values = np.array([int(v) for v in numeric] if kind == "int" else [float(v) for v in numeric], dtype=object)
            out[name] = values
        return out

    def _vector_matrix(self, column: pd.Series, field: str, column_name: str, dim: int) -> np.ndarray:
        try:
            matrix = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in column])
        except (ValueError, TypeError) as error:
            raise ParameterError(f"column '{column_name}' must hold equal-length float vectors: {error}") from error
        if matrix.shape[1] != dim:
            raise EncoderMismatchError(
                f"column '{column_name}' holds {matrix.shape[1]}-d vectors but field '{field}' of collection "
                f"'{self.collection}' at {self.uri} is {dim}-d; use another --collection, or re-index with --recreate")
        if not np.isfinite(matrix).all():
            raise ParameterError(f"column '{column_name}' has NaN or infinite values; re-extract those clips")
        return matrix

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

    def fetch_table(self, fields: Sequence[str] | None = None) -> pd.DataFrame:
        """Everything stored, as an embeddings table (vectors as float32 arrays), sorted by video and clip."""
        vector_fields = self._vector_fields()
        valid = [*SCALAR_FIELDS, *vector_fields]
        wanted = list(fields) if fields is not None else valid
        unknown = [f for f in wanted if f not in valid]
        if unknown:
            raise ParameterError(f"unknown fields {unknown}; valid: {', '.join(valid)}")
        query_fields = list(dict.fromkeys([PRIMARY_FIELD, *wanted]))
        rows = [row for batch in self._iter_rows(self.collection, query_fields) for row in batch]
        frame = pd.DataFrame(rows, columns=query_fields)
        for field in vector_fields:
            if field in frame:
                frame[field] = [np.asarray(v, dtype=np.float32) for v in frame[field]]
        if fields is None:
            frame.insert(len(SCALAR_FIELDS), "encoder_id", self._info()["properties"][PROP_ENCODER_ID])
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
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 < int(k) <= MAX_TOPK:
            raise ParameterError(f"{name} must be a whole number of results between 1 and {MAX_TOPK}, got {k!r}")
        return int(k)

    def _search_params(self, field: str, k: int) -> dict:
        if field not in self._index_types:
            index = self._call("describe index", "describe_index", self.collection, field) or {}
            self._index_types[field] = str(index.get("index_type", "FLAT")).upper()
        index_type = self._index_types[field]
        params = dict(DEFAULT_SEARCH_PARAMS.get(index_type, {}))
        if "ef" in params:
            params["ef"] = max(params["ef"], k)
        return {"metric_type": "COSINE", "params": params}

    @staticmethod
    def _exclusions(exclude_video: Any, n_queries: int) -> list[str]:
        """One extra expression per query excluding its own video ('' when none)."""
        if exclude_video is None:
            return [""] * n_queries
        if isinstance(exclude_video, (str, Path)):
            return [f"video_path != {quote_string(str(exclude_video))}"] * n_queries
        paths = list(exclude_video)
        if len(paths) != n_queries:
            raise ParameterError(f"exclude_video has {len(paths)} paths for {n_queries} queries; give one per query, "
                                 "or one string for all")
        return [f"video_path != {quote_string(str(p))}" if p else "" for p in paths]

    @staticmethod
    def _hits(results) -> list[list[Hit]]:
        out = []
        for per_query in results:
            hits = []
            for hit in per_query:
                entity = hit.get("entity", hit)
                clip_id = hit.get(PRIMARY_FIELD) or entity.get(PRIMARY_FIELD) or hit.get("id")
                hits.append(Hit(clip_id=str(clip_id), score=float(hit["distance"]),
                                video_path=entity["video_path"], clip_index=int(entity["clip_index"]),
                                start_s=float(entity["start_s"]), end_s=float(entity["end_s"]), label=entity["label"],
                                domain=entity["domain"], group=entity["group"], split=entity["split"]))
            out.append(hits)
        return out

    def search(self, vectors: np.ndarray, k: int = 10, filters: Mapping[str, Any] | None = None,
               group_by_video: bool = False, anns_field: str = VECTOR_FIELD, encoder_id: str | None = None,
               preprocessing: Mapping | None = None, exclude_video: str | Sequence[str] | None = None
               ) -> list[list[Hit]]:
        """Nearest clips (cosine) for each query vector; one list of hits per query, best first.

        ``group_by_video`` keeps the best clip per video; ``exclude_video`` (one path, or one per
        query) drops hits from the query's own video; ``filters`` see :func:`build_filter`.
        """
        k = self._check_k(k)
        self._check_encoder(encoder_id, None, preprocessing, "search")
        matrix = self._query_matrix(vectors, anns_field, self._vector_fields())
        expression = build_filter(filters)
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
                             filter=_and(expression, exclusion), output_fields=HIT_FIELDS, search_params=params,
                             anns_field=anns_field, **grouping)
            for i, hits in zip(indices, self._hits(raw)):
                results[i] = hits
        return results

    def hybrid_search(self, vectors_by_field: Mapping[str, np.ndarray], k: int = 10, ranker: str = "rrf",
                      weights: Sequence[float] | None = None, rrf_k: int = 60, filters: Mapping[str, Any] | None = None,
                      candidate_k: int | None = None, exclude_video: str | None = None) -> list[list[Hit]]:
        """Search several vector fields at once and fuse the rankings (``rrf`` or ``weighted``).

        Each field returns ``candidate_k`` candidates (default ``max(4k, 50)``); RRF scores are
        ``sum 1/(rrf_k + rank)``, weighted scores are the weighted sum of cosines.
        """
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        k = self._check_k(k)
        if not vectors_by_field:
            raise ParameterError("vectors_by_field is empty; give at least one {field: query vectors}")
        candidate_k = self._check_k(candidate_k if candidate_k is not None else min(MAX_TOPK, max(4 * k, 50)), "candidate_k")
        if candidate_k < k:
            raise ParameterError(f"candidate_k ({candidate_k}) must be at least k ({k})")
        dims = self._vector_fields()
        matrices = {field: self._query_matrix(v, field, dims) for field, v in vectors_by_field.items()}
        counts = {field: len(m) for field, m in matrices.items()}
        if len(set(counts.values())) != 1:
            raise ParameterError(f"every field needs the same number of query vectors, got {counts}")
        ranker = str(ranker).lower()
        if ranker == "rrf":
            if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, np.integer)) or rrf_k <= 0:
                raise ParameterError(f"rrf_k must be a positive integer (60 is usual), got {rrf_k!r}")
            fuser = RRFRanker(int(rrf_k))
        elif ranker == "weighted":
            weights = [1.0 / len(matrices)] * len(matrices) if weights is None else [float(w) for w in weights]
            if len(weights) != len(matrices) or not all(math.isfinite(w) and w >= 0 for w in weights):
                raise ParameterError(f"weights must be {len(matrices)} non-negative numbers, one per field "
                                     f"({', '.join(matrices)}), got {weights!r}")
            fuser = WeightedRanker(*weights, norm_score=False)
        else:
            raise ParameterError(f"ranker must be 'rrf' or 'weighted', got {ranker!r}")
        expression = _and(build_filter(filters), self._exclusions(exclude_video, 1)[0] if exclude_video else "")
        self._ready()
        requests = [AnnSearchRequest(data=m.tolist(), anns_field=field, param=self._search_params(field, candidate_k),
                                     limit=candidate_k, expr=expression or None) for field, m in matrices.items()]
        raw = self._call("hybrid search", "hybrid_search", self.collection, reqs=requests, ranker=fuser, limit=k,
                         output_fields=HIT_FIELDS)
        return self._hits(raw)

    # ------------------------------------------------------------------ arrays stored with the collection
    def _ensure_arrays_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        name = self.arrays_collection
        if not self._call("has_collection", "has_collection", name):
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                                description=f"numpy arrays stored with {self.collection}")
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("name", DataType.VARCHAR, max_length=256)
            schema.add_field("chunk", DataType.INT64)
            schema.add_field("data", DataType.VARCHAR, max_length=65535)
            schema.add_field("unused_vector", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires one vector field
            indexes = self.client.prepare_index_params()
            indexes.add_index("unused_vector", index_type="FLAT", metric_type="L2")
            self._call("create arrays collection", "create_collection", name, schema=schema, index_params=indexes)
        self._ready(name)

    @staticmethod
    def _check_array_name(name: str) -> None:
        if not isinstance(name, str) or not _ARRAY_NAME_RE.match(name):
            raise ParameterError(f"array name {name!r} is not valid: use 1-200 letters, digits, '_', '.', '-'")

    def list_arrays(self) -> dict[str, dict]:
        """Arrays stored with the collection: name -> {shape, dtype, sha256, chunks}."""
        properties = self._info(refresh=True)["properties"]
        return {key[len(PROP_ARRAY_PREFIX):]: json.loads(value) for key, value in sorted(properties.items())
                if key.startswith(PROP_ARRAY_PREFIX)}

    def save_array(self, name: str, array: np.ndarray) -> dict:
        """Store a small numeric array with the collection (replacing one of the same name); returns its metadata."""
        self._check_array_name(name)
        array = np.ascontiguousarray(array)
        if array.dtype.kind not in "biufc":
            raise ParameterError(f"array '{name}' has dtype {array.dtype}; only numeric arrays can be stored")
        data = array.tobytes()
        if len(data) > ARRAY_MAX_BYTES:
            raise ParameterError(f"array '{name}' is {len(data) / 2**20:.1f} MiB; arrays stored with the collection "
                                 f"are limited to {ARRAY_MAX_BYTES // 2**20} MiB — save it to a file instead")
        self._info()  # the main collection must exist: the metadata lives in its properties
        self._ensure_arrays_collection()
        self._delete_array_rows(name)
        chunks = [data[i:i + ARRAY_CHUNK_BYTES] for i in range(0, len(data), ARRAY_CHUNK_BYTES)] or [b""]
        rows = [{"key": f"{name}:{i:06d}", "name": name, "chunk": i, "data": base64.b64encode(chunk).decode("ascii"),
                 "unused_vector": [0.0, 0.0]} for i, chunk in enumerate(chunks)]
        for start in range(0, len(rows), ARRAY_WRITE_BATCH):
            self._call(f"saving array '{name}'", "upsert", self.arrays_collection, rows[start:start + ARRAY_WRITE_BATCH])
        meta = {"shape": list(array.shape), "dtype": array.dtype.str, "sha256": hashlib.sha256(data).hexdigest(),
                "chunks": len(rows)}
        self._set_properties({PROP_ARRAY_PREFIX + name: canonical_json(meta)})
        return meta

    def load_array(self, name: str) -> np.ndarray:
        """An array saved with :meth:`save_array`, verified against its recorded SHA-256."""
        self._check_array_name(name)
        stored = self.list_arrays()
        if name not in stored:
            raise StoreError(f"collection '{self.collection}' at {self.uri} stores no array '{name}'; "
                             f"stored arrays: {sorted(stored) or 'none'}. Fit and save it first")
        meta = stored[name]
        self._ready(self.arrays_collection)
        rows = self._call(f"loading array '{name}'", "query", self.arrays_collection,
                          filter=f"name == {quote_string(name)}", output_fields=["chunk", "data"],
                          limit=max(1, int(meta["chunks"]) + 1))
        rows = sorted(rows, key=lambda r: int(r["chunk"]))
        data = b"".join(base64.b64decode(r["data"]) for r in rows)
        if [int(r["chunk"]) for r in rows] != list(range(int(meta["chunks"]))) or \
                hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise StoreError(f"array '{name}' stored with collection '{self.collection}' at {self.uri} is corrupt "
                             f"(SHA-256 or chunk count does not match what was saved); save it again with save_array "
                             f"(re-fit it if needed)")
        return np.frombuffer(data, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"]).copy()

    def _delete_array_rows(self, name: str) -> None:
        if self._call("has_collection", "has_collection", self.arrays_collection):
            self._ready(self.arrays_collection)
            self._call(f"deleting array '{name}'", "delete", self.arrays_collection, filter=f"name == {quote_string(name)}")

    def delete_array(self, name: str) -> bool:
        """Remove a stored array; False when there was none of that name."""
        self._check_array_name(name)
        existed = name in self.list_arrays()
        self._delete_array_rows(name)
        if existed:
            self._call("drop array property", "drop_collection_properties", self.collection,
                       property_keys=[PROP_ARRAY_PREFIX + name])
            self._info_cache = None
        return existed
