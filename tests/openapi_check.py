"""Validate API bodies against stream/openapi.json (the document the API serves)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator


@cache
def document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(files("stream.http").joinpath("openapi.json").read_text())
    return doc


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document()["components"]}
    return Draft202012Validator(root)


def validate(schema_name: str, body: Any) -> None:
    errors = sorted(_validator(schema_name).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{schema_name}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


def response_schema(path: str, status: int) -> str:
    """The component name the document promises for ``path`` (a template) and ``status``."""
    op = document()["paths"][path]["get"]
    ref: str = op["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]
