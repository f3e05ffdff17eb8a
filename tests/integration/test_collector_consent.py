"""The collector's side of the snippet's promises, as a real process: a field outside the
schema is refused by name (the snippet's old ``banner`` -> ``banner_id`` vanished in the
workers), a key made with consent required refuses a batch without ``consent: true``,
/v1/snippet-config tells the snippet which, and the versioned snippet URL is immutable,
CORS-readable and matches the SRI hash the README gives."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from stream import __version__
from stream.devtools.workers import http_get, http_post
from tests.support.collector_keys import make_key
from tests.support.collector_site import ORIGIN, SHOP, Site, view

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def test_a_field_outside_the_schema_is_rejected_by_name(site: Site) -> None:
    status, _, body = site.post([view(banner_id="annual-20")], site.secret)
    assert status == 400 and body["rejected"] == [{"index": 0, "reason": "unknown_field:banner_id"}]
    status, _, body = site.post([view(), view(banner="x")], site.secret)
    assert status == 202 and body["accepted"] == 1, body
    assert body["rejected"] == [{"index": 1, "reason": "unknown_field:banner"}]
    status, _, body = site.post([view()], site.secret, banner="x")
    assert status == 400 and body["error"]["code"] == "invalid_body", body


def _config(site: Site, key: str) -> tuple[int, dict[str, str], Any]:
    status, headers, raw = http_post(
        site.collector.url + f"/v1/snippet-config?key={key}", b"", method="GET", origin=ORIGIN
    )
    return status, headers, json.loads(raw)


def test_a_consent_key_refuses_a_batch_without_consent(site: Site) -> None:
    key = make_key(site.redis_url, SHOP, "public", [ORIGIN], consent_required=True)
    status, _, body = site.post([view()], key, origin=ORIGIN)
    assert status == 403 and body["error"]["code"] == "consent_required", body
    status, _, body = site.post([view()], key, origin=ORIGIN, consent=False)
    assert status == 403, body
    status, _, body = site.post([view()], key, origin=ORIGIN, consent=True)
    assert status == 202 and body["accepted"] == 1, body
    # a key without the setting takes batches with or without consent
    assert site.post([view()], site.public, origin=ORIGIN)[0] == 202
    status, headers, doc = _config(site, key)
    assert (status, doc) == (200, {"shop_id": SHOP, "consent": "required"})
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert _config(site, site.public)[2]["consent"] == "not_required"
    assert _config(site, "upk_unknown")[0] == 401


def test_the_versioned_snippet_is_immutable_and_its_sri_hash_is_documented(site: Site) -> None:
    _, plain = http_get(site.collector.url + "/v1/upsell.js")
    status, headers, versioned = http_post(
        site.collector.url + f"/v1/upsell-{__version__}.js", b"", method="GET"
    )
    assert status == 200 and versioned == plain
    assert (
        "immutable" in headers["Cache-Control"] and "max-age=31536000" in headers["Cache-Control"]
    )
    assert headers["Access-Control-Allow-Origin"] == "*"  # an SRI check on another origin needs it
    sri = "sha384-" + base64.b64encode(hashlib.sha384(versioned).digest()).decode()
    readme = (ROOT / "README.md").read_text()
    documented = re.findall(r'integrity="(sha384-[^"]+)"', readme)
    assert documented == [sri], f"README's SRI hash {documented} is not the snippet's {sri}"
    assert f"/v1/upsell-{__version__}.js" in readme
