"""``upsell-stream`` as a user types it: every subcommand with bad input and with Redis or the
broker down ends in one line on stderr and a non-zero exit code, never a traceback; and the
list, revoke and send commands do what they say against a real Redis, broker and collector."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from stream import __version__
from stream.devtools.embedded import EmbeddedBroker, EmbeddedRedis
from stream.devtools.ports import free_port
from stream.devtools.workers import ROOT, WorkerProcess
from stream.kafka.topics import ensure_topics
from stream.settings import Topics
from tests.support.e2e import collector_env, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SHOP = "shop-cli"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        env={**os.environ, "UPSELL_AUTH": "off", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, pattern: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("upsell-stream"), lines
    assert re.search(pattern, lines[0]), lines[0]


def test_version() -> None:
    proc = run("--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"upsell-stream {__version__}")


DOWN = f"redis://127.0.0.1:{free_port()}/0"
NO_BROKER = f"127.0.0.1:{free_port()}"
SEND_VIEW = ("send", "view", "--shop", SHOP, "--group", "g", "--variation", "a")


@pytest.mark.parametrize(
    ("args", "env", "code", "pattern"),
    [
        # usage mistakes: argparse's message, on one line
        (("bogus",), {}, 2, r"invalid choice: 'bogus'"),
        (("key", "add", "--shop", "s"), {}, 2, r"--kind"),
        # token: bad shop, no file, an unknown token
        (("token", "add", "--shop", "a b", "--file", "{tmp}/t"), {}, 2, r"got 'a b'"),
        (("token", "add", "--shop", "s"), {"UPSELL_API_TOKENS": ""}, 2, r"UPSELL_API_TOKENS"),
        (("token", "list", "--file", "{tmp}/none"), {}, 2, r"no tokens file"),
        (("token", "revoke", "ust_nope", "--file", "{tmp}/t"), {}, 2, r"no such token"),
        (("token", "revoke", "x!", "--file", "{tmp}/t"), {}, 2, r"give the token"),
        (("token", "add", "--shop", "s", "--file", "/proc/nope/t"), {}, 1, r"/proc/nope"),
        # key: bad input, then Redis down
        (("key", "add", "--shop", "s", "--kind", "public"), {}, 2, r"--origin"),
        (
            ("key", "add", "--shop", "s", "--kind", "secret", "--consent", "required"),
            {},
            2,
            r"public keys",
        ),
        (("key", "revoke", "nonsense"), {}, 2, r"give the key"),
        (
            ("key", "add", "--shop", "s", "--kind", "secret"),
            {"UPSELL_REDIS_URL": DOWN},
            1,
            r"Redis at redis://127\.0\.0\.1:\d+/0 did not answer",
        ),
        (("key", "list"), {"UPSELL_REDIS_URL": DOWN}, 1, r"Redis at .* did not answer"),
        (("key", "revoke", "upk_x"), {"UPSELL_REDIS_URL": DOWN}, 1, r"did not answer"),
        # send: an event the worker would dead-letter, a broker or a collector down
        (("send", "view", "--shop", SHOP), {}, 2, r"missing_field:group_id \(--group\)"),
        (
            ("send", "upgrade", "--shop", SHOP, "--subscriber", "c", "--currency", "eur"),
            {},
            2,
            r"bad_value:currency",
        ),
        (("send", "view", "--shop", "a b", "--group", "g", "--variation", "a"), {}, 2, r"shop_id"),
        ((*SEND_VIEW, "--collector", "http://127.0.0.1:1"), {}, 2, r"--collector needs --key"),
        (SEND_VIEW, {"UPSELL_KAFKA_BOOTSTRAP": NO_BROKER}, 1, r"cannot send to Kafka at"),
        (
            (*SEND_VIEW, "--collector", f"http://127.0.0.1:{free_port()}", "--key", "usk_x"),
            {},
            1,
            r"cannot reach the collector",
        ),
        # subscriber erase: bad input, Redis down
        (("subscriber", "erase", "--shop", "s", "--subscriber", ""), {}, 2, r"--subscriber"),
        (
            ("subscriber", "erase", "--shop", "s", "--subscriber", "x"),
            {"UPSELL_REDIS_URL": DOWN},
            1,
            r"Redis at .* did not answer",
        ),
        # the demo producer with the broker down, a worker with a bad setting
        (
            ("produce-demo", "--count", "3"),
            {"UPSELL_KAFKA_BOOTSTRAP": NO_BROKER},
            1,
            r"Kafka at .* did not answer",
        ),
        (("worker",), {"UPSELL_PARTITIONS": "many"}, 2, r"configuration error: .*PARTITIONS"),
    ],
)
def test_each_user_error_is_one_line(
    args: tuple[str, ...], env: dict[str, str], code: int, pattern: str, tmp_path: Path
) -> None:
    (tmp_path / "t").write_text("")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    one_line(run(*argv, **env), code, pattern)


def test_token_list_and_revoke(tmp_path: Path) -> None:
    tokens = str(tmp_path / "tokens")
    first = run("token", "add", "--shop", "a", "--shop", "b", "--file", tokens).stdout.strip()
    second = run("token", "add", "--shop", "*", "--file", tokens).stdout.strip()
    listed = run("token", "list", "--file", tokens).stdout.splitlines()
    assert [line.split()[1] for line in listed[1:]] == ["a,b", "*"], listed
    assert first not in "".join(listed) and second not in "".join(listed)
    second_id = listed[2].split()[0]
    assert run("token", "revoke", first, "--file", tokens).returncode == 0
    assert run("token", "revoke", second_id[:8], "--file", tokens).returncode == 0
    assert run("token", "list", "--file", tokens).stdout.splitlines()[1:] == []
    assert (tmp_path / "tokens").stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def stack(
    broker: EmbeddedBroker, redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, Topics, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("cli")
    topics = Topics("cli.")
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=2))
    env = collector_env(broker.bootstrap, redis_server.url, topics)
    collector = WorkerProcess(env, tmp, "collector", role="collector")
    try:
        collector.start().wait_ready()
        yield collector, topics, env
    finally:
        collector.stop()


def test_key_list_and_revoke_by_id(stack: tuple[WorkerProcess, Topics, dict[str, str]]) -> None:
    _, _, env = stack
    origin = "https://cli.example"
    made = run("key", "add", "--shop", SHOP, "--kind", "public", "--origin", origin, **env)
    key = made.stdout.splitlines()[-1]
    listed = run("key", "list", "--shop", SHOP, **env).stdout.splitlines()
    row = next(line for line in listed if origin in line)
    assert key not in "".join(listed) and row.split()[1:4] == ["public", "not_required", SHOP]
    assert run("key", "revoke", row.split()[0], **env).returncode == 0
    assert origin not in run("key", "list", "--shop", SHOP, **env).stdout
    one_line(run("key", "revoke", key, **env), 2, r"no such key")


def test_send_through_the_collector_and_straight_to_kafka(
    stack: tuple[WorkerProcess, Topics, dict[str, str]],
) -> None:
    collector, topics, env = stack
    key = run("key", "add", "--shop", SHOP, "--kind", "secret", **env).stdout.splitlines()[-1]
    via = run(*SEND_VIEW, "--event-id", "cli-view-1", "--collector", collector.url, "--key", key)
    assert via.returncode == 0 and "sent view cli-view-1" in via.stdout, via.stderr
    direct = run(
        "send", "upgrade", "--shop", SHOP, "--subscriber", "cust-1", "--revenue", "1200",
        "--currency", "EUR", "--from-mrr", "1500", "--to-mrr", "1250", "--event-id", "cli-up-1",
        **env,
    )  # fmt: skip
    assert direct.returncode == 0 and "to cli.upgrades" in direct.stdout, direct.stderr
    views = asyncio.run(read_topic(env["UPSELL_KAFKA_BOOTSTRAP"], topics.views))
    assert "cli-view-1" in {orjson.loads(r.value)["event_id"] for r in views}
    upgrades = [
        orjson.loads(r.value)
        for r in asyncio.run(read_topic(env["UPSELL_KAFKA_BOOTSTRAP"], topics.upgrades))
    ]
    up = next(u for u in upgrades if u["event_id"] == "cli-up-1")
    assert (up["revenue_minor"], up["to"]["mrr_minor"], up["currency"]) == (1200, 1250, "EUR")
    wrong = run(*SEND_VIEW, "--collector", collector.url, "--key", "usk_unknown")
    one_line(wrong, 1, r"the collector answered 401: unauthorized")
