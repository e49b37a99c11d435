"""Check JSON bodies from our routes against bacalhau_apiclient's response models, recursively.

Usage: contract_check.py <bodies.json>, where the file holds [{"route": str, "model": str, "body": any}].

For every body it walks the model's `swagger_types`/`attribute_map` and prints one line per finding:
    checked=<route> <Model>                   a body was walked
    missing=<Model>.<JSONKey>                 a key the client's model knows is absent from our JSON
    type_error=<route> <path> expected <swagger type>, got <python type>: <value>
    mismatch=<Model>.<JSONKey> expected <swagger type>, got <python type>   (type_errors, one line per field)
    extra=<Model>.<JSONKey>                   a key we send that the client's model does not know (ignored by it)
    passthrough=<Model> <json type>           an enum model without fields: the raw value reaches the caller
    deserialize_ok=<route> <Model>            ApiClient().deserialize did not raise
    deserialize_error=<route> <Model> <exception>
and last `verdict=ok` or `verdict=problems`.
"""

import json
import sys

import bacalhau_apiclient.models as models
from bacalhau_apiclient.api_client import ApiClient

PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "object": None}

missing = set()
extra = set()
passthrough = set()
problems = []
mismatches = set()


def type_error(route, path, where, expected, value):
    problems.append(f"type_error={route} {path} expected {expected}, got {kind(value)}: {value!r:.120}")
    mismatches.add(f"{where} expected {expected}, got {kind(value)}")


def out(key, value):
    print(f"{key}={value}", flush=True)


def kind(value):
    return type(value).__name__


def walk(value, swagger_type, path, route, where):
    if value is None:  # null is always accepted by the client (it yields None)
        return
    if swagger_type.startswith("list["):
        if not isinstance(value, list):
            type_error(route, path, where, swagger_type, value)
            return
        for i, item in enumerate(value):
            walk(item, swagger_type[5:-1], f"{path}[{i}]", route, where)
        return
    if swagger_type.startswith("dict("):
        if not isinstance(value, dict):
            type_error(route, path, where, swagger_type, value)
            return
        inner = swagger_type[len("dict("):-1].split(", ", 1)[1]
        for k, item in value.items():
            walk(item, inner, f"{path}.{k}", route, where)
        return
    if swagger_type in PRIMITIVES:
        allowed = PRIMITIVES[swagger_type]
        bad = allowed is not None and (not isinstance(value, allowed) or (swagger_type != "bool" and isinstance(value, bool)))
        if bad:
            type_error(route, path, where, swagger_type, value)
        return
    klass = getattr(models, swagger_type)
    if not klass.swagger_types:
        passthrough.add(f"{swagger_type} {kind(value)}")
        if isinstance(value, (dict, list)):
            type_error(route, path, where, f"a scalar enum value ({swagger_type})", value)
        return
    if not isinstance(value, dict):
        type_error(route, path, where, f"object {swagger_type}", value)
        return
    known = set()
    for attr, attr_type in klass.swagger_types.items():
        key = klass.attribute_map[attr]
        known.add(key)
        if key not in value:
            missing.add(f"{swagger_type}.{key}")
            continue
        walk(value[key], attr_type, f"{path}.{key}", route, f"{swagger_type}.{key}")
    for key in value:
        if key not in known:
            extra.add(f"{swagger_type}.{key}")


class Response:
    """The shape ApiClient.deserialize reads (a urllib3 response's `.data`)."""

    def __init__(self, body):
        self.data = json.dumps(body).encode()


def main():
    with open(sys.argv[1]) as f:
        entries = json.load(f)
    client = ApiClient()
    for entry in entries:
        route, model, body = entry["route"], entry["model"], entry["body"]
        out("checked", f"{route} {model}")
        walk(body, model, model, route, model)
        try:
            obj = client.deserialize(Response(body), model)
            if obj is None:
                raise ValueError("deserialised to None")
            out("deserialize_ok", f"{route} {model}")
        except Exception as exc:  # the verdict names whatever escapes the client
            problems.append(f"deserialize_error={route} {model} {type(exc).__name__}: {exc}")
    for line in sorted(missing):
        out("missing", line)
    for line in sorted(extra):
        out("extra", line)
    for line in sorted(passthrough):
        out("passthrough", line)
    for line in sorted(mismatches):
        out("mismatch", line)
    for line in problems:
        print(line, flush=True)
    out("verdict", "problems" if problems else "ok")


main()
