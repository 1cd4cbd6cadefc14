"""Small numpy arrays stored *with* a collection (e.g. a fitted whitening matrix or a projection head),
so every client transforms its queries the same way.

The bytes live in a companion collection (``<collection>__arrays``, base64 chunks under VARCHAR's
limit); shape, dtype and SHA-256 live in the main collection's properties, so a load is verified.
:class:`StoredArrays` is mixed into :class:`~motionmatch.index.store.MotionStore`, which provides
``_call``, ``_ready``, ``_info`` and ``_set_properties``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np

from ..errors import ParameterError, StoreError
from .filters import quote_string
from .schema import ARRAYS_SUFFIX, PROP_ARRAY_PREFIX
from ..table import canonical_json

ARRAY_CHUNK_BYTES = 48_000  # base64 -> 64,000 chars, under VARCHAR's 65,535
ARRAY_MAX_BYTES = 64 * 2**20
ARRAY_WRITE_BATCH = 16  # chunks per upsert call (~1 MB)
_ARRAY_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


class StoredArrays:
    """save_array / load_array / list_arrays / delete_array for a MotionStore."""

    collection: str
    uri: str

    @property
    def arrays_collection(self) -> str:
        return self.collection + ARRAYS_SUFFIX

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
            self._call("create arrays collection", "create_collection", name, schema=schema, index_params=indexes,
                       consistency_level="Session")  # a server reads its own writes at once (default: Bounded)
        self._ready(name)

    @staticmethod
    def _check_array_name(name: str) -> None:
        if not isinstance(name, str) or not _ARRAY_NAME_RE.match(name):
            raise ParameterError(f"array name {name!r} is not valid: use 1-200 letters, digits, '_', '.', '-'")

    def list_arrays(self) -> dict[str, dict]:
        """Arrays stored with the collection: name -> {shape, dtype, sha256, chunks}."""
        properties = self._info(refresh=True)["properties"]
        return {key[len(PROP_ARRAY_PREFIX):]: json.loads(value) for key, value in sorted(properties.items())
                if key.startswith(PROP_ARRAY_PREFIX) and value}  # "" marks a deleted array on Milvus < 2.5

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
            try:
                self._call("drop array property", "drop_collection_properties", self.collection,
                           property_keys=[PROP_ARRAY_PREFIX + name])
            except StoreError:  # Milvus < 2.5 cannot drop a property ("only support alter"): blank it instead
                self._set_properties({PROP_ARRAY_PREFIX + name: ""})
            self._info_cache = None
        return existed

    def replace_arrays(self, prefix: str, arrays: dict[str, np.ndarray]) -> list[str]:
        """Delete every stored array whose name starts with ``prefix``, then save ``arrays`` under it (a reload
        never mixes two fits); returns the names written."""
        for name in [n for n in self.list_arrays() if n.startswith(prefix)]:
            self.delete_array(name)
        for key, array in arrays.items():
            self.save_array(prefix + key, array)
        return [prefix + key for key in arrays]
