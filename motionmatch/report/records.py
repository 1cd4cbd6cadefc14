"""Values a notebook records (read back by the tests and by ``motionmatch report``'s summary)."""
from __future__ import annotations

import json
from typing import Any


from ..table import jsonable

RECORD_MIME = "application/x-motionmatch-record+json"


def record(name: str, value: Any) -> None:
    """Store ``value`` under ``name`` in this cell's output, where tests can read it.

    The value is written as a custom MIME bundle (invisible in HTML reports) so papermill's
    output notebook carries it; ``read_records`` collects them again.
    """
    from IPython.display import display

    payload = {"name": name, "value": jsonable(value)}
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


__all__ = ["RECORD_MIME", "record", "read_records"]
