"""The npm package under clients/js/ (the browser snippet's one source): installed from its
package-lock.json with ``npm ci`` (the pinned TypeScript), built with tsc, its node tests run,
the collector's /v1/upsell.js checked to be its build, and ``npm pack`` lists what would be
published. Needs node and npm (scripts/ensure-system-tools installs them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "clients" / "js"

pytestmark = pytest.mark.timeout(600)


def _npm(*args: str) -> subprocess.CompletedProcess[str]:
    npm = shutil.which("npm")
    assert npm, "npm is missing: run scripts/ensure-system-tools (apt-get install nodejs npm)"
    return subprocess.run(
        [npm, *args, "--no-audit", "--no-fund"] if args[0] == "ci" else [npm, *args],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=540,
    )


def test_the_js_package_builds_and_its_tests_pass() -> None:
    installed = _npm("ci")
    assert installed.returncode == 0, installed.stderr[-3000:]
    tested = _npm("test")
    assert tested.returncode == 0, (tested.stdout + tested.stderr)[-5000:]
    passed = re.search(r"^# pass (\d+)$", tested.stdout, re.M)
    assert "# fail 0" in tested.stdout and passed and int(passed[1]) >= 8, tested.stdout[-2000:]
    packed = _npm("pack", "--dry-run", "--json")
    assert packed.returncode == 0, packed.stderr[-3000:]
    files = {f["path"] for f in json.loads(packed.stdout)[0]["files"]}
    assert {"dist/upsell.js", "dist/upsell.d.ts", "package.json", "LICENSE"} <= files, files
