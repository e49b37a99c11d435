"""The base of every wire model: Bacalhau's PascalCase names, matched case-insensitively on input.

Go's encoding/json matches struct keys case-insensitively, so a job file may say `type:` or `Type:`.
`WireModel.from_user` accepts any casing by canonicalising the keys once, walking the model tree,
before pydantic's (Rust) validation runs. Trusted data (our own store, our own messages) goes straight
through `model_validate` / `model_validate_json`: a per-object Python validator cost several ms per job.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Self

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticSerializationError

from bacalhau.models.fields import USER_INPUT, MaxItems

# How a field holds a nested model: directly, in a list, or as the values of a mapping.
_ONE, _LIST, _MAP = "one", "list", "map"
# Per key: its canonical spelling, the model it holds (if any), how it holds it, and its MaxItems count.
_KeyPlan = tuple[str, "type[WireModel] | None", str, int | None]


class WireModel(BaseModel):
    """A pydantic model whose fields carry Bacalhau's wire names as aliases."""

    # defer_build: pydantic builds a schema on first use, not at import; the CLI imports every model
    # but uses a few, and building them all cost ~350 ms per command.
    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)

    @classmethod
    def _plan(cls) -> dict[str, _KeyPlan]:
        plan = cls.__dict__.get("_key_plan_cache")
        if plan is None:
            plan = {}
            hints = typing.get_type_hints(cls, include_extras=True)
            for name, field in cls.model_fields.items():
                alias = field.alias or name
                annotation = hints.get(name, field.annotation)
                nested, kind = _nested_model(annotation)
                entry = (alias, nested, kind, _max_items(annotation))
                plan[alias.lower()] = entry
                plan.setdefault(name.lower(), entry)
            # Cached per class: fields never change after class creation.
            type.__setattr__(cls, "_key_plan_cache", plan)
        return typing.cast(dict[str, _KeyPlan], plan)

    @classmethod
    def canonicalize(cls, data: Any) -> Any:
        """Return `data` with every key (at every level) renamed to its canonical wire spelling."""
        if not isinstance(data, dict):
            return data
        plan = cls._plan()
        out: dict[str, Any] = {}
        for key, value in data.items():
            entry = plan.get(key.lower()) if isinstance(key, str) else None
            if entry is None:
                out[key] = value
                continue
            alias, nested, kind, max_items = entry
            # An exact-case key wins over a differently-cased duplicate, as in Go.
            if alias in out and key != alias:
                continue
            if max_items is not None and isinstance(value, list | dict) and len(value) > max_items:
                pass  # left as it is: validation refuses it (MaxItems) without looking at its entries
            elif nested is not None:
                if kind == _ONE:
                    value = nested.canonicalize(value)
                elif kind == _LIST and isinstance(value, list):
                    value = [nested.canonicalize(v) for v in value]
                elif kind == _MAP and isinstance(value, dict):
                    value = {k: nested.canonicalize(v) for k, v in value.items()}
            out[alias] = value
        return out

    @classmethod
    def from_user(cls, data: Any) -> Self:
        """Validate input written by a person or another tool: keys in any case, as Bacalhau accepts."""
        return cls.model_validate(cls.canonicalize(data), context={USER_INPUT: True})

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict with Bacalhau's key names and encodings."""
        return self.model_dump(by_alias=True, mode="json")

    def to_wire_json(self) -> str:
        """to_wire() as compact JSON text, for storing.

        pydantic writes it in one pass (a quarter of the time of json.dumps over to_wire's dict), as
        UTF-8. A str that UTF-8 cannot encode (a lone surrogate, which a JSON \\u escape can carry
        in) is written ASCII-escaped instead, so anything a model holds can be stored."""
        try:
            return self.model_dump_json(by_alias=True)
        except PydanticSerializationError:
            return json.dumps(self.to_wire(), separators=(",", ":"))


def _max_items(annotation: Any) -> int | None:
    """The MaxItems count an (Annotated) annotation carries, or None."""
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, MaxItems):
                return meta.count
        return _max_items(typing.get_args(annotation)[0])
    return None


def _nested_model(annotation: Any) -> tuple[type[WireModel] | None, str]:
    """Find the WireModel inside an annotation such as `X`, `X | None`, `list[X]`, `dict[str, X]`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _nested_model(arg)
            if found[0] is not None:
                return found
        return None, _ONE
    if origin is list:
        inner, _ = _nested_model(typing.get_args(annotation)[0])
        return inner, _LIST
    if origin is dict:
        args = typing.get_args(annotation)
        inner, _ = _nested_model(args[1]) if len(args) == 2 else (None, _ONE)
        return inner, _MAP
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return annotation, _ONE
    return None, _ONE
