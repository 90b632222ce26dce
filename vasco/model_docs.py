"""Markdown reference tables written from pydantic models' field descriptions.

Two documents are generated this way, so that the text and the code cannot
drift apart: ``docs/configuration.md`` from :class:`vasco.config.VascoConfig`
(:func:`vasco.config.config_reference`) and the README's ``tile.json`` and
``summary.json`` tables from :mod:`vasco.outputs`
(:func:`vasco.outputs.outputs_reference`).  Tests compare each document with
what its generator prints.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["type_name", "meaning", "nested_model", "iter_fields", "field_table"]


def type_name(annotation: Any) -> str:
    """A field's type as the reference tables show it: ``float or None``, ``list[str]``, ``object``.

    A nested model is shown as ``object`` (its own keys get their own rows or section).
    """
    if annotation is type(None):
        return "None"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Union or origin is types.UnionType:
        return " or ".join(type_name(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is typing.Annotated:
        return type_name(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if annotation is Ellipsis:
        return "..."
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def meaning(field: FieldInfo) -> str:
    """A field's description on one line, with ``|`` escaped for a Markdown table cell."""
    return " ".join((field.description or "").split()).replace("|", "\\|")


def nested_model(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model a field holds, directly or inside ``X | None``, ``list[X]`` or ``dict[str, X]``.

    Returns
    -------
    tuple or None
        The model and the suffix its keys get after the field's name: ``""``
        (the model itself), ``"[]"`` (each item of a list) or ``".<key>"``
        (each value of a mapping); None when the field holds no model.
    """
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is Union or origin is types.UnionType:
        return nested_model(args[0]) if len(args) == 1 else None
    if origin is list and len(args) == 1:
        inner = nested_model(args[0])
        return (inner[0], "[]" + inner[1]) if inner else None
    if origin is dict and len(args) == 2:
        inner = nested_model(args[1])
        return (inner[0], ".<key>" + inner[1]) if inner else None
    return None


def iter_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Each field of ``model`` in declaration order, with its dotted name (``prefix`` + name)."""
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field


def field_table(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of ``model`` and of the models it holds, as the rows of one Markdown table.

    Columns: key (dotted: ``plate.region``, ``provenance.queries[].url``,
    ``services.<key>.rows``), type and meaning.  A key that holds a model has
    its own row, followed by the rows of its keys.
    """
    rows = ["| key | type | meaning |", "|---|---|---|"] if not prefix else []
    for dotted, field in iter_fields(model, prefix):
        rows.append(f"| `{dotted}` | {type_name(field.annotation)} | {meaning(field)} |")
        inner = nested_model(field.annotation)
        if inner is not None:
            rows += field_table(inner[0], f"{dotted}{inner[1]}.")
    return rows
