"""A real Prometheus scrapes a real worker and loads every alert rule. promtool's checks and the
rules' unit tests (deploy/prometheus/alerts_test.yml) run in `make lint`, which `make test` runs
first (they ran here a second time: 84 s of the suite's busiest minutes)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
from pathlib import Path

import orjson
import pytest
import yaml

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.ports import free_port
from stream.devtools.workers import http_get
from stream.settings import Topics
from tests.support.dates import an_hour_ago
from tests.support.e2e import produce, worker_env, workers
from tests.support.prometheus import PROM_DIR, system_tool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def rule_count() -> int:
    doc = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())
    return sum(len(g["rules"]) for g in doc["groups"])


async def test_prometheus_scrapes_a_worker(
    broker: EmbeddedBroker, redis_url: str, created_topics: Topics, tmp_path: Path
) -> None:
    prometheus = system_tool("prometheus")
    (w,) = workers(worker_env(broker.bootstrap, redis_url, created_topics, "batch"), tmp_path, 1)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{PROM_DIR / 'alerts.yml'}']\n"
        "scrape_configs:\n"
        "  - job_name: upsell-stream\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{w.port}']}}]\n"
    )
    proc = None
    try:
        w.start().wait_ready()
        await produce(
            broker.bootstrap,
            created_topics,
            [
                (
                    "view",
                    b"s1",
                    orjson.dumps(
                        {
                            "event_id": f"p{i}",
                            "shop_id": "s1",
                            "occurred_at": an_hour_ago()[0],
                            "group_id": "g",
                            "variation_id": "a",
                        }
                    ),
                )
                for i in range(25)
            ],
        )
        proc = subprocess.Popen(  # noqa: ASYNC220 - a server we stop in finally
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        query = urllib.parse.quote('sum(upsell_events_total{outcome="counted"})')
        value = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/api/v1/query?query={query}")
            except OSError:
                status, body = 0, b""
            if status == 200:
                result = json.loads(body)["data"]["result"]
                if result and float(result[0]["value"][1]) >= 25:
                    value = float(result[0]["value"][1])
                    break
            await asyncio.sleep(0.5)
        assert value == 25, f"Prometheus saw {value} counted events of 25 after 60 s"
        status, body = http_get(f"http://127.0.0.1:{port}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"]
        assert status == 200 and sum(len(g["rules"]) for g in groups) == rule_count()
        status, body = http_get(f"http://127.0.0.1:{port}/api/v1/query?query=up")
        assert json.loads(body)["data"]["result"][0]["value"][1] == "1"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(20)
        w.stop()
