"""Milvus persistence of fitted methods: a multi-vector collection with its transforms stored alongside.

:func:`index_hybrid` writes a table with one vector field per fitted representation;
:func:`save_transforms` / :func:`load_transforms` keep the calibration and the projection head
*with* the collection, so a client that knows only the URI and the collection embeds its
queries exactly as the index was built.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..refine.calibrate import ScoreCalibration
from ..errors import EncoderMismatchError, ParameterError
from .gating import GATED_FIELD_KEY, gated_field
from .methods import FittedVectors, VectorSpec
from .splits import coverage_column
from ..index.connection import require_multi_vector
from ..refine.heads import TrainedHead
from ..table import COVERAGE_COLUMN, clip_coverage, table_encoder_id

TRANSFORM_PREFIXES = {"calibration": "calibration.", "head": "head."}  # array-name prefixes in the store
def save_transforms(store, calibration: ScoreCalibration | None = None, head: TrainedHead | None = None) -> list[str]:
    """Store a calibration and/or a projection head with a collection (``store.save_array``); returns the array names.

    Arrays of an earlier calibration / head under the same prefix are removed first, so a reload
    never mixes two fits.
    """
    written = []
    for kind, artifact in (("calibration", calibration), ("head", head)):
        if artifact is None:
            continue
        written.extend(store.replace_arrays(TRANSFORM_PREFIXES[kind], artifact.to_arrays()))
    return written


def load_transforms(store, expected_encoder_id: str | None = None) -> tuple[ScoreCalibration | None, TrainedHead | None]:
    """The calibration and head stored with a collection by :func:`save_transforms` (None where absent)."""
    names = list(store.list_arrays())
    loaded: dict[str, Any] = {}
    for kind, prefix in TRANSFORM_PREFIXES.items():
        arrays = {n[len(prefix):]: store.load_array(n) for n in names if n.startswith(prefix)}
        if not arrays:
            loaded[kind] = None
        elif kind == "calibration":
            loaded[kind] = ScoreCalibration.from_arrays(arrays)
        else:
            loaded[kind] = TrainedHead.from_arrays(arrays, expected_encoder_id=expected_encoder_id)
    if expected_encoder_id and loaded["calibration"] is not None and loaded["calibration"].encoder_id \
            and loaded["calibration"].encoder_id != expected_encoder_id:
        raise EncoderMismatchError(f"the calibration stored with collection '{store.collection}' was fitted on "
                                   f"{loaded['calibration'].encoder_id!r}, not {expected_encoder_id!r}; re-run calibrate")
    return loaded["calibration"], loaded["head"]


def arrays_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[key]), np.asarray(b[key])) for key in a)


def hybrid_field_names(specs: Sequence[VectorSpec]) -> list[str]:
    """Milvus field names for hybrid fields: the first is 'embedding', a head is 'head', extras keep their column name."""
    names = ["embedding"]
    for spec in specs[1:]:
        name = "head" if spec.kind == "head" else spec.column
        if name in names:
            raise ParameterError(f"two hybrid fields would both be stored as {name!r}: {[s.label for s in specs]}")
        names.append(name)
    return names


def fields_artifacts(fields: Sequence[FittedVectors]) -> tuple[ScoreCalibration | None, TrainedHead | None]:
    calibrations = [f.artifact for f in fields if isinstance(f.artifact, ScoreCalibration) and f.spec.column == "embedding"]
    heads = [f.artifact for f in fields if isinstance(f.artifact, TrainedHead)]
    if len(calibrations) > 1 or len(heads) > 1 or any(isinstance(f.artifact, ScoreCalibration) and f.spec.column != "embedding"
                                                      for f in fields):
        raise ParameterError("a hybrid collection stores at most one calibration of the main embedding and one head")
    return (calibrations[0] if calibrations else None), (heads[0] if heads else None)


def field_encoder_id(fitted: FittedVectors, table: pd.DataFrame) -> str:
    if isinstance(fitted.artifact, (ScoreCalibration, TrainedHead)):
        return fitted.artifact.output_encoder_id
    return table_encoder_id(table)


def index_hybrid(table: pd.DataFrame, store, fields: Sequence[FittedVectors], preprocessing: Mapping[str, Any],
                 recreate: bool = True, clip_spec: Mapping[str, Any] | None = None,
                 index_type: str | None = None) -> dict[str, Any]:
    """Write ``table`` into a multi-vector collection (one field per fitted representation) and store the transforms.

    The first field becomes the collection's ``embedding`` (its encoder_id records the calibration,
    if any); the others become extra vector fields (see :func:`hybrid_field_names`). An extra channel with
    coverage below 1 somewhere (the pose channel) is the collection's gated field
    (:func:`~motionmatch.beyond.gating.gated_field`): its coverage is the ``coverage`` scalar field and its name is
    recorded in the preprocessing under :data:`~motionmatch.beyond.gating.GATED_FIELD_KEY`, for
    :func:`~motionmatch.beyond.gating.gated_hybrid_search`. Returns ``{"rows", "fields": {name: dim}, "encoder_id",
    "arrays", "gated"}``. ``index_type`` defaults to the store's.
    """
    from ..index.schema import DEFAULT_INDEX_TYPE

    names = hybrid_field_names([f.spec for f in fields])
    gated = gated_field(table, {name: f.spec.column for name, f in zip(names, fields)})
    preprocessing = dict(preprocessing)
    if gated:
        preprocessing[GATED_FIELD_KEY] = gated
    if len(names) > 1:
        require_multi_vector(store, f"collection '{store.collection}' with vector fields {names}")
    vectors = {name: f.transform(table) for name, f in zip(names, fields)}
    encoder_id = field_encoder_id(fields[0], table)
    out = table.copy()
    out["encoder_id"] = encoder_id
    if gated:
        out[COVERAGE_COLUMN] = clip_coverage(table, coverage_column(fields[names.index(gated)].spec.column))
    for name in names:
        out[name] = list(vectors[name])
    dims = {name: int(v.shape[1]) for name, v in vectors.items()}
    store.ensure_collection(encoder_id=encoder_id, dim=dims["embedding"], preprocessing=dict(preprocessing),
                            extra_vectors={n: d for n, d in dims.items() if n != "embedding"}, recreate=recreate,
                            clip_spec=clip_spec, index_type=index_type or DEFAULT_INDEX_TYPE)
    rows = store.upsert(out, vector_columns={name: name for name in names}, progress=False)
    calibration, head = fields_artifacts(fields)
    arrays = save_transforms(store, calibration=calibration, head=head)
    return {"rows": rows, "fields": dims, "encoder_id": encoder_id, "arrays": arrays, "gated": gated}
