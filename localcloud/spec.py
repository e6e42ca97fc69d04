"""RunPod's own REST v2 OpenAPI description, used as the contract for request bodies.

``localcloud/reference/runpod-rest-v2-openapi.json`` is RunPod's file,
unmodified. Request bodies are validated against its JSON Schemas
(OpenAPI 3.1 = JSON Schema 2020-12, so ``unevaluatedProperties`` works), so
the spec is the one source of truth for names, types, enums and ranges;
the handlers add the rules the spec says are "enforced at the handler".

Violations are reported like RunPod's ``ErrorResponse.errors``, one string
per violation with a JSON path, e.g. ``$: additional properties 'bogus' not
allowed`` or ``$.gpu.count: must be >= 1 but found 0``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent / "reference" / "runpod-rest-v2-openapi.json"
_URI = "urn:runpod-rest-v2"


@cache
def spec() -> dict[str, Any]:
    """Return RunPod's v2 OpenAPI document."""
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource.from_contents(spec(), default_specification=DRAFT202012))


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """Return a validator of ``#/components/schemas/<schema_name>``."""
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"no schema {schema_name!r} in {SPEC_PATH.name}")
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{schema_name}"}, registry=_registry())


def schema(schema_name: str) -> dict[str, Any]:
    """Return the raw schema ``#/components/schemas/<schema_name>``."""
    return spec()["components"]["schemas"][schema_name]


def validate(schema_name: str, instance: Any) -> list[str]:
    """Return every violation of ``schema_name`` by ``instance`` (empty when valid), RunPod-style."""
    messages: list[str] = []
    for error in sorted(validator(schema_name).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        message = _describe(error)
        if message and message not in messages:
            messages.append(message)
    return messages


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        target: Any = spec()
        for part in ref.split("#", 1)[1].strip("/").split("/"):
            target = target[int(part)] if isinstance(target, list) else target[
                part.replace("~1", "/").replace("~0", "~")
            ]
        node = target
    return node


def known_properties(node: Any) -> set[str]:
    """Return the property names a schema declares, through ``$ref``, ``allOf`` and ``if/then``."""
    node = _resolve(node)
    if not isinstance(node, dict):
        return set()
    names = set(node.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []):
            names |= known_properties(sub)
    for key in ("then", "else"):
        if key in node:
            names |= known_properties(node[key])
    return names


def _quoted(values: Any) -> str:
    return ", ".join(repr(v) for v in values)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _describe(error: ValidationError) -> str | None:
    path, kind, value = error.json_path, error.validator, error.validator_value
    if kind in ("unevaluatedProperties", "additionalProperties") and isinstance(error.instance, dict):
        # A failing subschema drops its annotations, so unevaluatedProperties
        # also blames declared names; report only the really unknown ones.
        known = known_properties(error.schema)
        unknown = [k for k in error.instance if k not in known]
        return f"{path}: additional properties {_quoted(unknown)} not allowed" if unknown else None
    if kind == "required":
        missing = [name for name in value if isinstance(error.instance, dict) and name not in error.instance]
        return f"{path}: missing properties: {_quoted(missing or value)}"
    if kind == "enum":
        return f"{path}: value must be one of {_quoted(value)}"
    if kind == "type":
        want = " or ".join(value) if isinstance(value, list) else value
        return f"{path}: expected {want}, but got {_type_name(error.instance)}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{path}: must be >= {value} but found {error.instance}"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{path}: must be <= {value} but found {error.instance}"
    if kind == "minLength":
        return f"{path}: length must be >= {value}, but got {len(error.instance)}"
    if kind == "maxItems":
        return f"{path}: maximum {value} items allowed, but found {len(error.instance)} items"
    if kind == "pattern":
        return f"{path}: {error.instance!r} does not match pattern {value!r}"
    return f"{path}: {error.message}"


# -- query parameters --------------------------------------------------------------


def _pointer_escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


@cache
def _query_params(path: str, method: str) -> tuple[tuple[str, str, str], ...]:
    """Return (name, JSON pointer of its schema, style-explode) of an operation's query parameters."""
    item = spec()["paths"][path]
    found: list[tuple[str, str, str]] = []
    sources = [(f"/paths/{_pointer_escape(path)}/parameters", item.get("parameters", []))]
    sources.append((f"/paths/{_pointer_escape(path)}/{method}/parameters", item[method].get("parameters", [])))
    for base, params in sources:
        for index, param in enumerate(params):
            pointer = f"{base}/{index}"
            if "$ref" in param:
                pointer = param["$ref"].split("#", 1)[1]
                param = _resolve(param)
            if param.get("in") == "query":
                explode = "explode" if param.get("explode", param.get("style", "form") == "form") else "csv"
                found.append((param["name"], f"{pointer}/schema", explode))
    return tuple(found)


@cache
def _pointer_validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=_registry())


def _coerce(raw: str, node: Any) -> Any:
    kind = _resolve(node).get("type") if isinstance(_resolve(node), dict) else None
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw.lower(), raw)
    return raw


def parse_query(path: str, method: str, query: Any) -> tuple[dict[str, Any], list[str]]:
    """Parse an operation's query parameters as the spec declares them (``query`` has ``getlist``).

    Returns the values by name (absent ones left out) and every violation,
    e.g. ``query.include: value must be one of 'AVAILABILITY'``. Arrays with
    ``explode: false`` are comma-separated. Unknown parameters are ignored.
    """
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, pointer, style in _query_params(path, method.lower()):
        raws = query.getlist(name)
        if not raws:
            continue
        node = _resolve({"$ref": f"#{pointer}"})
        if node.get("type") == "array":
            items = [p for raw in raws for p in (raw.split(",") if style == "csv" else [raw])]
            value: Any = [_coerce(item, node.get("items", {})) for item in items]
        else:
            value = _coerce(raws[-1], node)
        problems = sorted(_pointer_validator(pointer).iter_errors(value), key=lambda e: list(map(str, e.path)))
        for error in problems:
            message = _describe(error)
            if message:
                errors.append(f"query.{name}" + message[1:])
        values[name] = value
    return values, errors
