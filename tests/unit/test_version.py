"""One version: stream/__init__.py's. The CLI, the image label, the Kubernetes image tag, both
servers' OpenAPI documents, the npm package and the Python client say the same, and
CHANGELOG.md has a section for it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from stream import __version__
from stream.collector.routes import SNIPPET_PATH
from stream.http.api.routes import OPENAPI

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_reports_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stream.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == f"upsell-stream {__version__}"


def test_the_image_label_the_chart_and_its_render_agree() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    labels = re.findall(r'org\.opencontainers\.image\.version="([^"]+)"', dockerfile)
    assert labels == [__version__], labels
    chart = (ROOT / "deploy" / "helm" / "upsell-stream" / "Chart.yaml").read_text()
    assert re.findall(r'^appVersion: "?([^"\s]+)"?$', chart, re.M) == [__version__]
    values = (ROOT / "deploy" / "helm" / "upsell-stream" / "values.yaml").read_text()
    assert re.findall(r'^  tag: "?([^"\s]+)"?$', values, re.M) == [__version__]
    rendered = (ROOT / "deploy" / "k8s" / "upsell-stream.yaml").read_text()
    tags = set(re.findall(r"image: \S+/upsell-stream:(\S+)", rendered))
    assert tags == {__version__}, tags


def test_the_openapi_documents_and_the_snippet_url_carry_it() -> None:
    assert json.loads(OPENAPI)["info"]["version"] == __version__
    assert f"/v1/upsell-{__version__}.js" == SNIPPET_PATH
    snippet = (ROOT / "stream" / "collector" / "static" / "upsell.js").read_text()
    assert snippet.startswith(f"/* upsell.js {__version__} ")


def test_the_clients_and_the_changelog_carry_it() -> None:
    package = json.loads((ROOT / "clients" / "js" / "package.json").read_text())
    assert package["version"] == __version__
    lock = json.loads((ROOT / "clients" / "js" / "package-lock.json").read_text())
    assert lock["version"] == __version__
    client = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())
    assert client["project"]["version"] == __version__
    init = (ROOT / "clients" / "python" / "src" / "upsell_client" / "__init__.py").read_text()
    assert f'__version__ = "{__version__}"' in init
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{__version__}]" in changelog
    assert (ROOT / "LICENSE").read_text().startswith("\n                                 Apache")
