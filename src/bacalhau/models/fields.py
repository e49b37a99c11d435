"""Field types shared by the wire models: Go's `null` for an empty map or list accepted as empty."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator


def _none_to_dict(value: Any) -> Any:
    return {} if value is None else value


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


# Go emits `null` for empty maps and lists; we accept it and always emit `{}` / `[]`.
T = TypeVar("T")
NoneList = Annotated[list[T], BeforeValidator(_none_to_list)]
StrMap = Annotated[dict[str, str], BeforeValidator(_none_to_dict)]
AnyMap = Annotated[dict[str, Any], BeforeValidator(_none_to_dict)]
