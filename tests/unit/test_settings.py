"""Settings from the environment: defaults, every variable, and one clear error per bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stream.settings import Settings, SettingsError, Topics

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_with_auth_off() -> None:
    s = Settings.from_env({"UPSELL_AUTH": "off"})
    assert s.api_port == 6066
    assert s.topic_prefix == "upsell."
    assert s.engine == "batch"
    assert s.auth_enabled is False
    assert s.topics.views == "upsell.banner-views"
    assert s.topics.dead_letters == "upsell.dead-letters"
    assert s.partitions == 8 and s.retention_days == 800


def test_every_variable(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    s = Settings.from_env(
        {
            "UPSELL_KAFKA_BOOTSTRAP": "k1:9092,kafka://k2:9093",
            "UPSELL_REDIS_URL": "redis://r:6380/2",
            "UPSELL_REDIS_CLUSTER": "on",
            "UPSELL_API_PORT": "7000",
            "UPSELL_TOPIC_PREFIX": "shopx.",
            "UPSELL_API_TOKENS": str(tokens),
            "UPSELL_ENGINE": "faust",
            "UPSELL_CORS_ORIGINS": "https://a.example, http://localhost:3000/",
            "UPSELL_LOG_FORMAT": "json",
            "UPSELL_LOG_LEVEL": "debug",
            "UPSELL_PARTITIONS": "16",
            "UPSELL_RETENTION_DAYS": "30",
            "UPSELL_BATCH_MAX_EVENTS": "500",
            "UPSELL_BATCH_LINGER_MS": "10",
        }
    )
    assert s.kafka_bootstrap == "k1:9092,k2:9093"
    assert s.redis_url == "redis://r:6380/2" and s.redis_cluster
    assert s.api_port == 7000 and s.topics.shops == "shopx.shops"
    assert s.api_tokens_path == tokens and s.auth_enabled
    assert s.engine == "faust" and s.log_format == "json" and s.log_level == "DEBUG"
    assert s.cors_origins == ("https://a.example", "http://localhost:3000")
    assert (s.partitions, s.retention_days, s.batch_max_events, s.batch_linger_ms) == (
        16,
        30,
        500,
        10,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("UPSELL_API_PORT", "abc"),
        ("UPSELL_API_PORT", "70000"),
        ("UPSELL_REDIS_URL", "http://nope"),
        ("UPSELL_REDIS_URL", "redis://host:99999"),
        ("UPSELL_KAFKA_BOOTSTRAP", "no-port"),
        ("UPSELL_ENGINE", "spark"),
        ("UPSELL_LOG_FORMAT", "xml"),
        ("UPSELL_AUTH", "maybe"),
        ("UPSELL_PARTITIONS", "0"),
        ("UPSELL_CORS_ORIGINS", "ftp://x"),
        ("UPSELL_TOPIC_PREFIX", "bad prefix"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"UPSELL_AUTH": "off", variable: value})
    assert err.value.variable == variable
    assert variable in str(err.value)


def test_tokens_required_unless_auth_off(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({})
    assert err.value.variable == "UPSELL_API_TOKENS"
    with pytest.raises(SettingsError, match="no such file"):
        Settings.from_env({"UPSELL_API_TOKENS": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"UPSELL_AUTH": "off", "UPSELL_API_PORT": "abc"}, "UPSELL_API_PORT"),
        ({"UPSELL_API_TOKENS": "/nonexistent/tokens"}, "UPSELL_API_TOKENS"),
        ({"UPSELL_AUTH": "off", "UPSELL_REDIS_URL": "nope://"}, "UPSELL_REDIS_URL"),
    ],
)
def test_worker_exits_2_with_one_line(env: dict[str, str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stream.cli", "worker"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr


def test_min_insync_replicas_within_the_replication_factor() -> None:
    s = Settings.from_env(
        {"UPSELL_AUTH": "off", "UPSELL_REPLICATION_FACTOR": "3", "UPSELL_MIN_INSYNC_REPLICAS": "2"}
    )
    assert (s.replication_factor, s.min_insync_replicas) == (3, 2)
    assert Settings.from_env({"UPSELL_AUTH": "off"}).min_insync_replicas == 1
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"UPSELL_AUTH": "off", "UPSELL_MIN_INSYNC_REPLICAS": "2"})
    assert err.value.variable == "UPSELL_MIN_INSYNC_REPLICAS"


def test_every_kind_has_its_topic() -> None:
    from schemas.models import Kind
    from stream.settings.topics import KIND_TOPICS

    assert set(KIND_TOPICS) == {k.value for k in Kind}, "a kind without a topic, or a stale one"
    topics = Topics("p.")
    assert topics.of(Kind.VIEW) == topics.views == "p.banner-views"
    assert topics.of(Kind.SUBSCRIBERS) == topics.subscriber_counts == "p.subscriber-counts"


def test_the_pools_of_counting_and_serving() -> None:
    d = Settings.from_env({"UPSELL_AUTH": "off"})
    assert (d.redis_counting_connections, d.redis_api_connections, d.api_busy_wait_ms) == (
        32,
        64,
        250,
    )
    s = Settings.from_env(
        {
            "UPSELL_AUTH": "off",
            "UPSELL_REDIS_COUNTING_CONNECTIONS": "16",
            "UPSELL_REDIS_API_CONNECTIONS": "8",
            "UPSELL_API_BUSY_WAIT_MS": "0",
        }
    )
    assert (s.redis_counting_connections, s.redis_api_connections, s.api_busy_wait_ms) == (
        16,
        8,
        0,
    )
    with pytest.raises(SettingsError, match="UPSELL_REDIS_API_CONNECTIONS"):
        Settings.from_env({"UPSELL_AUTH": "off", "UPSELL_REDIS_API_CONNECTIONS": "0"})
