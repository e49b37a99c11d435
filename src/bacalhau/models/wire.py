"""The base of every wire model: Bacalhau's PascalCase names, matched case-insensitively.

Go's encoding/json matches struct keys case-insensitively, so a job file may say `type:` or `Type:`;
our models accept both and always emit the canonical spelling.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class WireModel(BaseModel):
    """A pydantic model whose fields carry Bacalhau's wire names as aliases."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", validate_assignment=False)

    _lower_aliases: ClassVar[dict[str, str]]

    @classmethod
    def _alias_map(cls) -> dict[str, str]:
        cached = cls.__dict__.get("_lower_alias_cache")
        if cached is None:
            cached = {}
            for name, field in cls.model_fields.items():
                alias = field.alias or name
                cached[alias.lower()] = alias
                cached[name.lower()] = alias
            # Cache per class: model_fields never changes after class creation.
            type.__setattr__(cls, "_lower_alias_cache", cached)
        return cached

    @model_validator(mode="before")
    @classmethod
    def _match_keys_case_insensitively(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        aliases = cls._alias_map()
        out: dict[str, Any] = {}
        for key, value in data.items():
            canonical = aliases.get(key.lower(), key) if isinstance(key, str) else key
            # An exact-case key wins over a differently-cased duplicate, as in Go.
            if canonical in out and key != canonical:
                continue
            out[canonical] = value
        return out

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready dict with Bacalhau's key names and encodings."""
        return self.model_dump(by_alias=True, mode="json")
