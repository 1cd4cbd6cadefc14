"""Milvus filter expressions from plain dicts: field names checked against the schema, values escaped,
so user text never becomes expression syntax."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from .schema import SCALAR_FIELDS


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


def build_filter(filters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
                 fields: Mapping[str, tuple[str, int]] = SCALAR_FIELDS) -> str:
    """Translate ``{"domain": "studio", "label": ["a", "b"], "start_s": (0, 5)}`` into a safe expression.

    A value matches exactly; a list or set means "any of"; a tuple ``(lo, hi)`` is an
    inclusive range on a numeric field (``None`` leaves that end open). Conditions are
    ANDed. Field names must be scalar fields of the schema; values are escaped.
    A list of such dicts matches rows that any of them matches (their expressions ORed).
    """
    if not filters:
        return ""
    if isinstance(filters, (list, tuple)):
        return " or ".join(f"({build_filter(one, fields)})" for one in filters)
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


def and_expressions(*expressions: str) -> str:
    """AND the non-empty expressions together ('' when none)."""
    parts = [e for e in expressions if e]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({e})" for e in parts)


def not_video(path: str | Path) -> str:
    """The expression excluding one video's clips."""
    return f"video_path != {quote_string(str(path))}"
