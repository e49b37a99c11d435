"""Field types shared by the wire models: Go's `null` for an empty map or list accepted as empty, and
the most entries a list from a user may hold (`MaxItems`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

# Validation context key set by `WireModel.from_user`: the data comes from a user, not from our own store.
USER_INPUT = "user_input"


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


@dataclass(frozen=True)
class MaxItems:
    """Annotation: a list (or map) written by a user holds at most `count` entries.

    Checked before any entry is validated, and only for user input (`WireModel.from_user`): a 10 MB
    body of `{}` entries is 3 million models, minutes of CPU to validate one by one. Records read back
    from our own stores are trusted and never refused here (an old store may hold bigger specs; the
    job limits fail those with a reason instead). `WireModel.canonicalize` reads `count` too, so it
    does not walk an oversized list either.
    """

    count: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Wrap the list's own schema with the count check."""
        return core_schema.with_info_before_validator_function(self._check, handler(source))

    def _check(self, value: Any, info: ValidationInfo) -> Any:
        context = info.context
        from_user = isinstance(context, dict) and context.get(USER_INPUT)
        if from_user and isinstance(value, list | dict) and len(value) > self.count:
            raise PydanticCustomError(
                    "too_many_items",
                    "{actual} entries exceed the most any node accepts ({limit})",
                    {"actual": len(value), "limit": self.count},
                )
        return value


# Go emits `null` for empty maps and lists; we accept it and always emit `{}` / `[]`.
T = TypeVar("T")
NoneList = Annotated[list[T], BeforeValidator(_none_to_list)]
StrMap = Annotated[dict[str, str], BeforeValidator(_none_to_dict)]
AnyMap = Annotated[dict[str, Any], BeforeValidator(_none_to_dict)]
# A count, priority or timeout: `1e20` is read as the whole number it is, then bounded by validation.
WholeNumber = Annotated[int, BeforeValidator(_whole_float_to_int)]
