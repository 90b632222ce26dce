"""Running SExtractor/PSFEx inside a step: a tool's failure becomes a step error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vasco.extraction.sextractor import ToolError
from vasco.steps.base import StepError

__all__ = ["tool_step"]

_T = TypeVar("_T")


def tool_step(fn: Callable[[], _T]) -> _T:
    """Call ``fn``; an external tool's failure becomes a step error with the tool's reason."""
    try:
        return fn()
    except ToolError as exc:
        raise StepError(exc.reason, exc.message) from exc
