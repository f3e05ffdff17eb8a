"""Validate API bodies against stream/openapi.json (the document the API serves)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from importlib.resources import files
from pathlib import Path
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


def schemathesis_run(base_url: str, token: str, workdir: Path, *extra: str) -> str:
    """schemathesis' own runner against a live server's ``/v1/openapi.json`` with a bearer
    token: server errors, response schemas, status codes and content types, for every
    operation (``extra`` adds options, e.g. operations to leave out). Asserts it passed and
    returns its output."""
    cli = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run(
        [
            str(cli),
            "run",
            base_url + "/v1/openapi.json",
            "--url",
            base_url,
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance,"
            "status_code_conformance,content_type_conformance",
            "--max-examples",
            "40",
            "--phases",
            "examples,coverage,fuzzing",
            "--suppress-health-check",
            "all",
            "--workers",
            "2",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=workdir,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output
