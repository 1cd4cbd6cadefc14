"""Helpers for notebooks run by papermill: record values the tests assert on."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RECORD_MIME = "application/x-motionmatch-record+json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value: Any) -> None:
    """Store ``value`` under ``name`` in this cell's output, where tests can read it.

    The value is written as a custom MIME bundle (invisible in HTML reports) so papermill's
    output notebook carries it; ``read_records`` collects them again.
    """
    from IPython.display import display

    payload = {"name": name, "value": _jsonable(value)}
    json.dumps(payload)  # fail here, in the notebook, if the value cannot be stored
    display({RECORD_MIME: payload}, raw=True)


def read_records(notebook_path) -> dict[str, Any]:
    """Return every value a notebook recorded with :func:`record`, by name."""
    import nbformat

    nb = nbformat.read(str(notebook_path), as_version=4)
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(RECORD_MIME)
            if payload is not None:
                found[payload["name"]] = payload["value"]
    return found


# ----------------------------------------------------------------------------- reading a run in a notebook
@dataclass
class Run:
    """An extraction run as a notebook sees it: the table, what was recorded, and who made the vectors."""

    embeddings_dir: Path
    table: pd.DataFrame
    meta: dict[str, Any]
    encoder_id: str
    encoder_note: str  # plain words for the encoder, with the reason when `auto` fell back

    @property
    def banner(self) -> str:
        """The markdown a report opens with: which encoder made every number, and why."""
        return f"**Encoder:** {self.encoder_note}"

    @property
    def caveat(self) -> str:
        """A markdown bullet when the numbers are not a pre-trained V-JEPA 2's ('' when they are)."""
        return encoder_caveat(self.encoder_id)


def encoder_caveat(encoder_id: str) -> str:
    """The caveat every conclusion carries when its vectors are not a pre-trained V-JEPA 2's."""
    if encoder_id.startswith("vjepa2:") and "tiny" not in encoder_id:
        return ""
    return ("- **Caveat.** These numbers are not V-JEPA 2's: they come from the encoder named above, on the data "
            "in `embeddings_dir`. They show the method and the measurements, not V-JEPA 2's quality.")


def load_run(embeddings_dir: str | Path = "") -> Run:
    """Table + meta + encoder note of an extraction run; ``""`` means the configured embeddings folder."""
    from .config import setting
    from .encoders.auto import describe_encoder
    from .table import load_embeddings, read_extract_meta

    folder = Path(setting("embeddings_dir", embeddings_dir))
    meta = read_extract_meta(folder)
    table = load_embeddings(folder)
    encoder_id = str(meta["encoder_id"])
    note = str(meta.get("encoder_note") or describe_encoder(encoder_id))
    return Run(embeddings_dir=folder, table=table, meta=meta, encoder_id=encoder_id, encoder_note=note)
