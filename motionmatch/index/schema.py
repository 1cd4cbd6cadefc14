"""What a MotionMatch collection looks like: fields, recorded properties, index configuration, hits.

:class:`IndexConfig` is the store's index and search configuration (langchain-milvus'
``Milvus(index_params=, search_params=)`` and FiftyOne's ``MilvusSimilarityConfig`` are the
models): it is given to :class:`~motionmatch.index.store.MotionStore`'s constructor and checked once
there. :data:`DEFAULT_INDEX_TYPE`, :data:`DEFAULT_INDEX_PARAMS` and :data:`DEFAULT_SEARCH_PARAMS`
are the one place the bench-recommended defaults live (a test keeps them equal to bench/RESULTS.md).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import EncoderMismatchError, ParameterError
from ..table import make_clip_id
from ..validation import check_choice, check_scalar

MAX_TOPK = 16384  # Milvus caps limit (and offset + limit) per request
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
FRAMES_SUFFIX = "__frames"  # the frame store of a collection of dense windows (motionmatch.index.frames)
MAX_DIM = 32768

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
    "coverage": ("float", 0),
}
# Scalar fields a collection made before they existed may lack (it keeps working without them), and the value a
# table without the column gets. coverage: the share of a clip's frames with what the encoder describes (a person,
# for the pose channel); 1.0 for every other encoder. A pose collection is searched with `coverage > 0`.
OPTIONAL_SCALAR_FIELDS: dict[str, float] = {"coverage": 1.0}
# optional text fields a collection may carry (name -> max_length in bytes), base64 payloads that are fetched,
# never searched: the frame store's per-frame times and thumbnails (motionmatch.index.frames)
TEXT_FIELDS: dict[str, int] = {"frame_times": 4096, "frame_thumbs": 65535}
HIT_FIELDS = ["clip_id", "video_path", "clip_index", "start_s", "end_s", "label", "domain", "group", "split"]
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")

# ----------------------------------------------------------------------------- index configuration
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")
# Chosen by bench/bench_search.py's `recommend` (bench/RESULTS.md; a test keeps them equal): Milvus Lite's
# FLAT is 18-63x slower than the numpy floor; at 1e5 vectors HNSW ef=32/64/128 and IVF_FLAT lie within
# 10 % of each other (Milvus Lite's per-call cost dominates), and HNSW M=16 ef=64 is the fastest of them
# that keeps recall@10 >= 0.99 at 1e4 and 1e5 (IVF_FLAT nlist=128 nprobe=8 fell to 0.94 at 1e4).
DEFAULT_INDEX_TYPE = "HNSW"
DEFAULT_INDEX_PARAMS: dict[str, dict] = {"FLAT": {}, "HNSW": {"M": 16, "efConstruction": 100}, "IVF_FLAT": {"nlist": 128}}
# Search-time parameters; HNSW's ef is raised to k when k is larger (HNSW needs ef >= k).
DEFAULT_SEARCH_PARAMS: dict[str, dict] = {"FLAT": {}, "HNSW": {"ef": 64}, "IVF_FLAT": {"nprobe": 32}}
# The parameters each index type takes, with their lower bounds (Milvus' own limits are wider).
_PARAM_BOUNDS = {"M": 2, "efConstruction": 1, "nlist": 1, "ef": 1, "nprobe": 1}


@dataclass(frozen=True)
class IndexConfig:
    """How new collections are indexed and how searches are run (all parameters checked here, once).

    ``index_params`` default to :data:`DEFAULT_INDEX_PARAMS` of ``index_type``, ``search_params`` to
    :data:`DEFAULT_SEARCH_PARAMS`. A collection indexed elsewhere with another type is searched with
    that type's defaults.
    """

    index_type: str = DEFAULT_INDEX_TYPE  # FLAT | HNSW | IVF_FLAT
    index_params: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"M": 16, "efConstruction": 100}
    search_params: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"ef": 64}

    def __post_init__(self) -> None:
        index_type = check_choice(str(self.index_type).upper(), "index_type", INDEX_TYPES)
        object.__setattr__(self, "index_type", index_type)
        for name, given, defaults in (("index_params", self.index_params, DEFAULT_INDEX_PARAMS),
                                      ("search_params", self.search_params, DEFAULT_SEARCH_PARAMS)):
            if not isinstance(given, Mapping):
                raise ParameterError(f"{name} must be a dict such as {defaults[index_type]!r}, got {given!r}")
            unknown = sorted(set(given) - set(defaults[index_type]))
            if unknown:
                raise ParameterError(f"{name} {unknown} do not apply to a {index_type} index; it takes "
                                     f"{sorted(defaults[index_type]) or 'none'}")
            checked = {key: check_scalar(value, f"{name}[{key!r}]", int, min_value=_PARAM_BOUNDS.get(key, 1))
                       for key, value in given.items()}
            object.__setattr__(self, name, {**defaults[index_type], **checked})

    def search_params_for(self, index_type: str, k: int) -> dict:
        """Search parameters for a collection indexed with ``index_type`` (HNSW's ef raised to at least k)."""
        index_type = str(index_type).upper()
        params = dict(self.search_params if index_type == self.index_type else DEFAULT_SEARCH_PARAMS.get(index_type, {}))
        if "ef" in params:
            params["ef"] = max(int(params["ef"]), int(k))
        return {"metric_type": "COSINE", "params": params}


def check_dim(dim: Any, name: str = "dim") -> int:
    """A vector dimension: a whole number in 1..MAX_DIM."""
    return check_scalar(dim, name, int, min_value=1, max_value=MAX_DIM)


def build_schema(client, dim: int, extra_vectors: Mapping[str, int], index: IndexConfig,
                 text_fields: Sequence[str] = ()):
    """The collection schema and index parameters (one COSINE index per vector field); ``text_fields`` adds
    the named :data:`TEXT_FIELDS`. Every :data:`SCALAR_FIELDS` entry is a field, the optional ones included."""
    from pymilvus import DataType, MilvusClient

    types = {"str": DataType.VARCHAR, "int": DataType.INT64, "float": DataType.FLOAT}
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                        description="MotionMatch clip embeddings")
    for name, (kind, max_length) in SCALAR_FIELDS.items():
        extra = {"max_length": max_length} if kind == "str" else {}
        schema.add_field(name, types[kind], is_primary=name == PRIMARY_FIELD, **extra)
    for name in text_fields:
        schema.add_field(name, DataType.VARCHAR, max_length=TEXT_FIELDS[name])
    indexes = client.prepare_index_params()
    for name, field_dim in {VECTOR_FIELD: dim, **extra_vectors}.items():
        schema.add_field(name, DataType.FLOAT_VECTOR, dim=field_dim)
        indexes.add_index(name, index_type=index.index_type, metric_type="COSINE", params=dict(index.index_params))
    return schema, indexes


# ----------------------------------------------------------------------------- rows and hits
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


def hits_from_results(results) -> list[list[Hit]]:
    """pymilvus search results -> one list of :class:`Hit` per query."""
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


def scalar_columns(table: pd.DataFrame, encoder_id: str) -> dict[str, np.ndarray]:
    """Typed, validated scalar columns (object arrays of python values) ready for Milvus."""
    out: dict[str, np.ndarray] = {}
    for name, (kind, max_length) in SCALAR_FIELDS.items():
        if name == "clip_id" and name not in table.columns:
            out[name] = np.array([make_clip_id(p, i, encoder_id) for p, i in
                                  zip(table["video_path"].astype(str), table["clip_index"])], dtype=object)
            continue
        if name not in table.columns:
            default = OPTIONAL_SCALAR_FIELDS.get(name, "" if kind == "str" else 0)
            out[name] = np.array([default] * len(table), dtype=object)
            continue
        column = table[name]
        if name in OPTIONAL_SCALAR_FIELDS:  # blank where parts written before the column are mixed in
            column = column.where(column.notna(), OPTIONAL_SCALAR_FIELDS[name])
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


def vector_matrix(column: pd.Series, field: str, column_name: str, dim: int, where: str) -> np.ndarray:
    """A table column of vectors as an (n, dim) float32 matrix; ``where`` names the collection in errors."""
    try:
        matrix = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in column])
    except (ValueError, TypeError) as error:
        raise ParameterError(f"column '{column_name}' must hold equal-length float vectors: {error}") from error
    if matrix.shape[1] != dim:
        raise EncoderMismatchError(
            f"column '{column_name}' holds {matrix.shape[1]}-d vectors but field '{field}' of {where} is {dim}-d; "
            "use another --collection, or re-index with --recreate")
    if not np.isfinite(matrix).all():
        raise ParameterError(f"column '{column_name}' has NaN or infinite values; re-extract those clips")
    return matrix
