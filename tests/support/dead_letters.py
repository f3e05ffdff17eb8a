"""What every dead letter must be: a value of at most 128 KiB (contract §2) that the published
JSON Schema accepts."""

from __future__ import annotations

import json
from importlib.resources import files

from jsonschema import Draft202012Validator

DEAD_LETTER_MAX_BYTES = 128 * 1024  # contract §2: a dead letter's value is at most 128 KiB


def dead_letter_schema() -> Draft202012Validator:
    text = files("schemas").joinpath("json/dead-letter.schema.json").read_text()
    return Draft202012Validator(json.loads(text))
