"""One small parameter check, in the spirit of scikit-learn's ``check_scalar``.

Every public function checks its numbers and choices through these two helpers instead of
hand-written ``isinstance`` chains, so the rules are the same everywhere:

- an ``int`` parameter takes Python or numpy integers, never ``True``/``False`` and never floats;
- a ``float`` parameter takes any real number except booleans, and must be finite;
- bounds are inclusive unless said otherwise;
- a failure is a :class:`~motionmatch.errors.ParameterError` that names the parameter, the
  rule and the value received.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from .errors import ParameterError


def check_scalar(value: Any, name: str, kind: type = int, *, min_value: float | None = None,
                 max_value: float | None = None, include_min: bool = True, include_max: bool = True) -> Any:
    """Return ``value`` as ``kind`` (``int`` or ``float``) after checking its type and bounds."""
    if kind not in (int, float):
        raise TypeError(f"check_scalar kind must be int or float, got {kind!r}")
    wanted = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        article = "a whole number" if kind is int else "a number"
        raise ParameterError(f"{name} must be {article}, got {value!r} ({type(value).__name__})")
    if kind is float and not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    converted = kind(value)
    if min_value is not None and (converted < min_value or (converted == min_value and not include_min)):
        raise ParameterError(f"{name} must be {'>=' if include_min else '>'} {min_value:g}, got {value!r}")
    if max_value is not None and (converted > max_value or (converted == max_value and not include_max)):
        raise ParameterError(f"{name} must be {'<=' if include_max else '<'} {max_value:g}, got {value!r}")
    return converted


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` when it is one of ``choices``; otherwise a ParameterError listing them."""
    choices = tuple(choices)
    if isinstance(value, bool) or value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
