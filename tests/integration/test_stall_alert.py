"""A stalled worker is seen: with Redis stopped, /metrics shows lag in seconds rising, and a real
Prometheus scraping the worker finds the UpsellCountingStalled expression of alerts.yml true.

The expression waits for 120 s without an apply; rather than wait, the test evaluates it at a
moment 150 s ahead (Prometheus evaluates at any time it is given, with the latest samples of the
last 5 minutes), and checks it is empty at that same moment while the worker keeps up. The
promtool tests (alerts_test.yml, "worker stuck, lag flat") show the alert itself firing after
its ``for:``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.ports import free_port
from stream.devtools.workers import WorkerProcess, http_get
from stream.settings import Topics
from tests.support.e2e import produce, worker_env, workers
from tests.support.metrics import scrape, total
from tests.support.prometheus import PROM_DIR, system_tool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
AHEAD_S = 150


def stalled_expr() -> str:
    doc = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    return str(next(r for r in rules if r.get("alert") == "UpsellCountingStalled")["expr"])


def views(n: int, tag: str) -> list[tuple[str, bytes | None, bytes | None]]:
    now = datetime.now(UTC).isoformat()
    return [
        (
            "view",
            b"s1",
            orjson.dumps(
                {
                    "event_id": f"{tag}{i}",
                    "shop_id": "s1",
                    "occurred_at": now,
                    "group_id": "g",
                    "variation_id": "a",
                }
            ),
        )
        for i in range(n)
    ]


def gauges(w: WorkerProcess, name: str) -> dict[str, float]:
    """partition -> value of a per-partition gauge of the views topic."""
    return {
        dict(labels)["partition"]: value
        for (n, labels), value in scrape(w).items()
        if n == name and dict(labels).get("topic", "").endswith("banner-views")
    }


class Prometheus:
    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{PROM_DIR / 'alerts.yml'}']\n"
            "scrape_configs:\n"
            "  - job_name: any-name\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.proc = subprocess.Popen(
            [
                system_tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def query(self, expr: str, at: float) -> list[dict[str, object]]:
        url = (
            f"http://127.0.0.1:{self.port}/api/v1/query?"
            f"{urllib.parse.urlencode({'query': expr, 'time': f'{at:.3f}'})}"
        )
        try:
            status, body = http_get(url)
        except OSError:
            return []
        if status == 503:  # still starting
            return []
        assert status == 200, body
        result: list[dict[str, object]] = json.loads(body)["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout_s: float, what: str) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout_s
        while not (result := self.query(expr, time.time())):
            assert time.monotonic() < deadline, f"Prometheus never saw {what}: {expr}"
            time.sleep(0.5)
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path, appendonly=True).start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.mark.parametrize("engine", ["batch", "faust"])
def test_stalled_worker_shows_rising_lag_seconds_and_the_alert_expression(
    broker: EmbeddedBroker, own_redis: EmbeddedRedis, tmp_path: Path, engine: str
) -> None:
    topics = Topics(f"stall{engine}{time.time_ns() % 100_000}.")
    (w,) = workers(worker_env(broker.bootstrap, own_redis.url, topics, engine), tmp_path, 1)
    prometheus: Prometheus | None = None
    expr = stalled_expr()
    try:
        w.start().wait_ready()
        prometheus = Prometheus(tmp_path, f"127.0.0.1:{w.port}")
        asyncio.run(produce(broker.bootstrap, topics, views(50, "before"), partition=0))
        deadline = time.monotonic() + 60
        while gauges(w, "upsell_consumer_lag").get("0") != 0 or not gauges(
            w, "upsell_last_applied_timestamp_seconds"
        ):
            assert time.monotonic() < deadline, f"first 50 never applied:\n{w.tail()}"
            time.sleep(0.3)
        prometheus.wait_for("upsell_consumer_lag_seconds", 30, "the worker's lag")
        prometheus.wait_for("upsell_consumer_lag == 0", 30, "the worker caught up")
        assert prometheus.query(expr, time.time() + AHEAD_S) == [], "keeping up is no stall"

        own_redis.stop()
        asyncio.run(produce(broker.bootstrap, topics, views(30, "during"), partition=0))
        deadline = time.monotonic() + 30
        while gauges(w, "upsell_consumer_lag").get("0", 0) < 30:
            assert time.monotonic() < deadline, (
                f"lag never showed the 30 waiting: {gauges(w, 'upsell_consumer_lag')} "
                f"{gauges(w, 'upsell_consumer_lag_seconds')}\n{w.tail()}"
            )
            time.sleep(0.3)
        first = gauges(w, "upsell_consumer_lag_seconds")["0"]
        time.sleep(3)
        second = gauges(w, "upsell_consumer_lag_seconds")["0"]
        assert second >= first + 2, f"lag in seconds does not rise: {first} then {second}"
        assert gauges(w, "upsell_consumer_lag")["0"] == 30, "lag flat while stalled"
        prometheus.wait_for("upsell_consumer_lag > 0", 30, "the lag")
        (stalled,) = prometheus.query(expr, time.time() + AHEAD_S)
        labels = stalled["metric"]
        assert isinstance(labels, dict) and labels["partition"] == "0", stalled
        assert labels["topic"] == topics.views and labels["job"] == "any-name"
        assert prometheus.query("upsell_redis_up", time.time())[0]["value"][1] == "0"  # type: ignore[index]

        own_redis.start()
        deadline = time.monotonic() + 60
        while gauges(w, "upsell_consumer_lag").get("0") != 0:
            assert time.monotonic() < deadline, (
                f"never caught up after Redis came back:\n{w.tail()}"
            )
            time.sleep(0.3)
        assert gauges(w, "upsell_consumer_lag_seconds")["0"] == 0
        assert total(scrape(w), "upsell_redis_up") == 1
    finally:
        if prometheus is not None:
            prometheus.stop()
        w.stop()


def test_promtool_sees_the_stalled_alert_fire_with_lag_flat(tmp_path: Path) -> None:
    """promtool runs the "worker stuck, lag flat" group alone (all of alerts_test.yml takes
    promtool ~20 s of CPU; test_prometheus runs it whole)."""
    doc = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())
    stuck = next(t for t in doc["tests"] if t["name"].startswith("worker stuck, lag flat"))
    (lag,) = [s for s in stuck["input_series"] if s["series"].startswith("upsell_consumer_lag{")]
    assert "x" in lag["values"] and "+" not in lag["values"], "the lag series is flat"
    assert any(
        c["alertname"] == "UpsellCountingStalled" and c["exp_alerts"]
        for c in stuck["alert_rule_test"]
    )
    only = tmp_path / "stuck_test.yml"
    rules = [str(PROM_DIR / f) for f in doc["rule_files"]]
    only.write_text(yaml.safe_dump({**doc, "rule_files": rules, "tests": [stuck]}))
    run = subprocess.run(
        [system_tool("promtool"), "test", "rules", str(only)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout, run.stdout
