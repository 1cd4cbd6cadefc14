"""The bottom layer: the embeddings table's shape and the helpers every other layer needs.

Nothing here imports from the rest of the package except ``config``, ``errors`` and
``validation``, so every module may import it and there are no cycles (sentence-transformers'
``util/`` is the model). What lives here:

- the column names of a manifest, an embeddings table and ``failures.csv``;
- :func:`make_clip_id`, the one primary-key scheme;
- :func:`l2_normalize` and :func:`embedding_matrix` (the table's vectors as one matrix);
- :func:`effective_groups`, the group of every row as evaluation sees it;
- :func:`clip_coverage` and :func:`has_content`, the optional ``coverage`` column read one way (1.0 when absent);
- :func:`read_extract_meta` and :func:`load_embeddings`, the one way to read an extraction run
  (its ``extract_meta.json`` and its parquet parts).
"""
from __future__ import annotations

import hashlib
import math
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ParameterError

MANIFEST_COLUMNS = ("path", "label", "domain", "group", "split")
REQUIRED_MANIFEST_COLUMNS = ("path", "label", "domain", "group")
TABLE_COLUMNS = (
    "clip_id", "video_path", "video_fingerprint", "clip_index", "start_s", "end_s",
    "padded_frames", "label", "domain", "group", "split", "encoder_id", "embedding",
)
# Optional columns of dense-window tables (extract --stride-s): every frame a window starts, for the fine stage
# of a segment search (motionmatch.video.fingerprint): its times (list of float) and 24 x 24 grey thumbnails (zlib-packed bytes)
FRAME_COLUMNS = ("frame_times", "frame_thumbs")
# Optional column: the share of a clip's frames in which the encoder saw what it describes (the pose channel: a
# person). 0.0 means "nothing to describe": the clip's vector must not take part in rankings of that channel.
# Encoders without ``encode_with_coverage`` write 1.0; tables written before the column existed read as 1.0.
COVERAGE_COLUMN = "coverage"
FAILURE_COLUMNS = ("path", "stage", "reason", "hint")
EXTRACT_META = "extract_meta.json"
PARTS_DIR = "parts"
# Keys of extract_meta.json that describe a run but do not decide whether its parts can be reused.
META_NOTE_KEYS = ("encoder_note", "ray")  # recorded, not decisive: a run may resume another's output


def make_clip_id(video_path: str | Path, clip_index: int, encoder_id: str) -> str:
    """Deterministic primary key (40 hex chars) of one clip of one video under one encoder."""
    key = f"{Path(video_path).as_posix()}|{int(clip_index)}|{encoder_id}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value (sorted keys, no spaces) used to compare settings."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise ParameterError(f"value must be JSON-serialisable (str, numbers, lists, dicts): {error}") from error


def jsonable(value: Any) -> Any:
    """``value`` with numpy and pandas parts turned into plain JSON types (the one coercer).

    numpy scalars -> Python numbers, arrays -> lists, DataFrames -> lists of records (the index as a column),
    Series -> dicts, tuples -> lists, dict keys -> str, non-finite floats -> None (JSON has no NaN); anything
    else is left as it is.
    """
    if isinstance(value, pd.DataFrame):
        return jsonable(value.reset_index().to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, (np.bool_, np.integer)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32. All-zero rows stay zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32, copy=False)


def require_columns(table: pd.DataFrame, columns: Sequence[str], what: str = "the embeddings table") -> None:
    """ParameterError naming what is missing when ``table`` is not a DataFrame with ``columns``."""
    if not isinstance(table, pd.DataFrame):
        raise ParameterError(f"{what} must be a pandas DataFrame (load it with motionmatch.table.load_embeddings), "
                             f"got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ParameterError(f"{what} lacks column(s) {missing}; it has {list(table.columns)} — "
                             "load it with motionmatch.table.load_embeddings")


def embedding_matrix(table: pd.DataFrame, column: str = "embedding") -> np.ndarray:
    """The table's vectors (``column``) as one (n, dim) float32 matrix; (0, 0) for an empty table."""
    require_columns(table, (column,))
    if len(table) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    try:
        return np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in table[column]])
    except ValueError as err:
        raise ParameterError(f"column '{column}': vectors differ in length ({err}); "
                             "was the table built with one encoder?") from None


def clip_coverage(table: pd.DataFrame, column: str = COVERAGE_COLUMN) -> np.ndarray:
    """(n,) float coverage of every row: the column's values, 1.0 where it is absent or blank (older tables,
    encoders that see everything)."""
    if column not in table.columns:
        return np.ones(len(table), dtype=np.float64)
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(values), values, 1.0)


def has_content(table: pd.DataFrame, column: str = COVERAGE_COLUMN) -> np.ndarray:
    """(n,) bool: rows whose coverage is above 0 (a clip with no person is False for the pose channel)."""
    return clip_coverage(table, column) > 0


def effective_groups(table: pd.DataFrame, column: str = "group") -> np.ndarray:
    """The group of every row, the one rule evaluation, splits and head training share: a blank group means
    "the video is its own group" (so a table without groups never becomes one group "")."""
    require_columns(table, (column,))
    group = table[column].fillna("").astype(str).to_numpy()
    if not (group == "").any():
        return np.char.add("group:", group.astype(str))
    require_columns(table, ("video_path",), "a table with blank groups (each video is then its own group)")
    video = table["video_path"].astype(str).to_numpy()
    return np.where(group == "", np.char.add("video:", video.astype(str)), np.char.add("group:", group.astype(str)))


def table_encoder_id(table: pd.DataFrame) -> str:
    """The single encoder_id of a table ('' when the column is absent); mixed encoders are an error."""
    if "encoder_id" not in table.columns or len(table) == 0:
        return ""
    ids = sorted(set(table["encoder_id"].astype(str)))
    if len(ids) != 1:
        raise ParameterError(f"the table mixes encoders {ids}; vectors of different encoders are not comparable")
    return ids[0]


def parts_dir(embeddings_dir: str | Path) -> Path:
    """Where an extraction run keeps one parquet part per finished video."""
    return Path(embeddings_dir) / PARTS_DIR


def read_extract_meta(embeddings_dir: str | Path) -> dict[str, Any]:
    """The settings an extraction run recorded (``extract_meta.json``): encoder_id, preprocessing, clip_spec, ...

    The one place that reads it; a missing or broken file is a ParameterError saying what to run.
    """
    path = Path(embeddings_dir) / EXTRACT_META
    if not path.is_file():
        raise ParameterError(f"{embeddings_dir} has no {EXTRACT_META} — run extraction first "
                             "(notebook 01 or `motionmatch extract SOURCE --out DIR`)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ParameterError(f"{path} cannot be read ({err}); extract again with --overwrite") from None
    missing = [key for key in ("encoder_id", "preprocessing", "clip_spec") if key not in meta]
    if missing:
        raise ParameterError(f"{path} lacks {missing}; it was not written by this version — extract again with --overwrite")
    return meta


def load_embeddings(embeddings_dir: str | Path) -> pd.DataFrame:
    """The embeddings table of an extraction run (all its parts), sorted by video and clip."""
    folder = parts_dir(embeddings_dir)
    parts = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not parts:
        raise ParameterError(f"no embeddings in {embeddings_dir} — run extraction first "
                             "(notebook 01 or `motionmatch extract`)")
    table = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    table["embedding"] = [np.asarray(v, dtype=np.float32) for v in table["embedding"]]
    return table.sort_values(["video_path", "clip_index"], kind="stable").reset_index(drop=True)
