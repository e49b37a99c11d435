"""Field types shared by the wire models: Go's `null` for an empty map or list accepted as empty."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator


def _none_to_dict(value: Any) -> Any:
    return {} if value is None else value


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


def _whole_float_to_int(value: Any) -> Any:
    # pydantic refuses a whole float beyond int64 (`1e20`) with a parser error that names no limit;
    # as an int it reaches validation, which says which limit it exceeds (models/limits.py).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Go emits `null` for empty maps and lists; we accept it and always emit `{}` / `[]`.
T = TypeVar("T")
NoneList = Annotated[list[T], BeforeValidator(_none_to_list)]
StrMap = Annotated[dict[str, str], BeforeValidator(_none_to_dict)]
AnyMap = Annotated[dict[str, Any], BeforeValidator(_none_to_dict)]
# A count, priority or timeout: `1e20` is read as the whole number it is, then bounded by validation.
WholeNumber = Annotated[int, BeforeValidator(_whole_float_to_int)]
