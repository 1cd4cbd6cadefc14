"""A stage folder that is also its verb: ``mm.extract(source)``, ``mm.index()``, ``mm.search(query)``.

``motionmatch.extract`` is both the folder of the extraction stage and the thing a user calls. A function of
that name on the package would shadow the folder (then ``import motionmatch.extract.local as x`` fails, since
Python resolves that form through attributes), so instead the folder's module is made callable: calling it
calls the verb, and everything else about it stays a module (Python's documented way to customise a module:
assigning ``sys.modules[name].__class__``).
"""
from __future__ import annotations

import sys
import types
from typing import Any, Callable


class _Stage(types.ModuleType):
    """A module that calls its ``__verb__`` when called."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__verb__(*args, **kwargs)


def make_callable(module_name: str, verb: Callable[..., Any]) -> None:
    """Make the (already imported) module ``module_name`` call ``verb`` when it is called."""
    module = sys.modules[module_name]
    module.__verb__ = verb
    module.__class__ = _Stage


__all__ = ["make_callable"]
