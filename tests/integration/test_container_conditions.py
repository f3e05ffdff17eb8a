"""The worker run as the container runs it, and it counts (Kafka in, HTTP out).

Images cannot be built here, so the test reproduces the pod's conditions with the installed
package (the worker Deployment of deploy/k8s/upsell-stream.yaml, the chart's render, and
deploy/Dockerfile; tests/unit/test_deploy_consistency.py checks the same pod in each role):

- the image's numeric unprivileged UID and GID (10001), no supplementary groups, no
  capabilities, ``no_new_privs`` (``setpriv``);
- a read-only root: a private mount namespace (``unshare --mount``) in which ``/`` is
  remounted read-only, so the installed package, the virtualenv, ``/etc``, ``HOME``'s
  surroundings and also ``/tmp`` cannot be written (stricter than the pod, which mounts a
  small ``/tmp``); only the data directory is bind-mounted writable. ``/dev/shm`` and ``/proc``
  stay as they are, as in a container;
- the environment of the rendered ConfigMap, with what must differ on a test machine:
  the broker's address, the Redis URL (the Secret's key), a topic prefix and group of its own,
  the API port (6066 may be taken), the tokens file's path and the data directory's path
  (``/etc/upsell-stream`` and ``/app/data`` do not exist here, and creating them would change
  the host), and ``HOME`` = the data directory, as in the image. Replication factor 3 and
  min.insync.replicas 2 stay as in the ConfigMap: the topics are created first with one
  replica, as an operator creates them, since the single test broker cannot hold three.

The tokens file is readable by the worker's group only (the Secret's ``defaultMode: 0440``
with ``fsGroup``); the test also rotates a token: added and reloaded on SIGHUP, then revoked
by rewriting the file, which the worker notices by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from stream.devtools.embedded import EmbeddedBroker, free_port
from stream.devtools.tokens_cli import add_token
from stream.devtools.workers import ROOT, http_get
from stream.kafka.topics import ensure_topics
from stream.settings import Settings, Topics
from tests.integration.e2e import produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def image_user() -> tuple[int, int]:
    found = re.search(r"^USER (\d+):(\d+)$", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    assert found, "deploy/Dockerfile names no numeric USER"
    return int(found[1]), int(found[2])


def configmap() -> dict[str, str]:
    """The ConfigMap of the chart's render (deploy/k8s/upsell-stream.yaml, scripts/render-chart)."""
    docs = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "upsell-stream.yaml").read_text())
    doc = next(d for d in docs if d and d["kind"] == "ConfigMap")
    return {k: str(v) for k, v in doc["data"].items()}


def sandbox(data_dir: Path, uid: int, gid: int) -> list[str]:
    """argv prefix: a private mount namespace with a read-only root except ``data_dir``, then
    the program as ``uid:gid`` with no groups, no capabilities and no new privileges."""
    for tool in ("unshare", "setpriv", "mount"):
        assert shutil.which(tool), f"{tool} is missing (util-linux)"
    assert os.geteuid() == 0, "reproducing the pod needs root to set up the mount namespace"
    setup = f'mount --bind {data_dir} {data_dir} && mount -o remount,bind,ro / && exec "$@"'
    return [
        *("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", setup, "sandbox"),
        *("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs"),
        *("--inh-caps=-all", "--bounding-set=-all", "--"),
    ]


@pytest.fixture
def pod_dirs() -> Iterator[tuple[Path, Path]]:
    """A data directory owned by the worker's user, and a tokens directory it can only read
    through its group (outside pytest's 0700 tmp tree, which the worker's user cannot enter)."""
    uid, gid = image_user()
    base = Path(tempfile.mkdtemp(prefix="upsell-pod-"))
    try:
        base.chmod(0o755)
        data, secret = base / "data", base / "secret"
        data.mkdir(mode=0o700)
        os.chown(data, uid, gid)
        secret.mkdir()
        os.chown(secret, 0, gid)
        secret.chmod(0o750)
        yield data, secret
    finally:
        shutil.rmtree(base, ignore_errors=True)


def add_pod_token(tokens: Path, shops: list[str]) -> str:
    token = add_token(tokens, shops)
    os.chown(tokens, 0, image_user()[1])
    tokens.chmod(0o440)
    return token


def view(shop: str, n: int) -> tuple[str, bytes, bytes]:
    event = {
        "event_id": f"pod-{n}",
        "shop_id": shop,
        "occurred_at": datetime.now(UTC).isoformat(),
        "group_id": "g",
        "variation_id": "a",
    }
    return ("view", shop.encode(), orjson.dumps(event))


def test_sandbox_is_read_only_but_the_data_dir(pod_dirs: tuple[Path, Path]) -> None:
    data, _ = pod_dirs
    uid, gid = image_user()
    script = (
        "id -u; id -g; "
        f"touch {ROOT}/.probe 2>/dev/null && echo root-writable; "
        f"touch {sys.prefix}/.probe 2>/dev/null && echo venv-writable; "
        "touch /tmp/.upsell-probe 2>/dev/null && echo tmp-writable; "
        f"touch {data}/probe && echo data-writable"
    )
    out = subprocess.run(
        [*sandbox(data, uid, gid), "sh", "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(uid), str(gid), "data-writable"], out


def test_worker_counts_as_the_pod_runs_it(
    broker: EmbeddedBroker, redis_url: str, pod_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    data, secret = pod_dirs
    uid, gid = image_user()
    tokens = secret / "tokens"
    reader = add_pod_token(tokens, ["pod-shop"])
    topics = Topics(f"pod{os.getpid()}.")
    config = configmap()
    partitions = int(config["UPSELL_PARTITIONS"])
    asyncio.run(ensure_topics(broker.bootstrap, topics, partitions=partitions))
    port = free_port()
    env = {
        **config,
        "UPSELL_KAFKA_BOOTSTRAP": broker.bootstrap,
        "UPSELL_KAFKA_IDEMPOTENCE": "off",
        "UPSELL_REDIS_URL": redis_url,
        "UPSELL_TOPIC_PREFIX": topics.prefix,
        "UPSELL_GROUP_ID": f"grp-{topics.prefix.rstrip('.')}",
        "UPSELL_API_PORT": str(port),
        "UPSELL_API_TOKENS": str(tokens),
        "UPSELL_DATA_DIR": str(data),
        "UPSELL_WORKER_ID": "pod-worker",
        "HOME": str(data),
        "PATH": os.environ["PATH"],
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    settings = Settings.from_env(env)
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    log_path = tmp_path / "pod-worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*sandbox(data, uid, gid), sys.executable, "-m", "stream.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(proc, log_path, lambda: _status(f"{url}/readyz/counting") == 200, 90, "ready")
        asyncio.run(produce(broker.bootstrap, topics, [view("pod-shop", n) for n in range(40)]))

        def counted() -> int:
            status, body = http_get(f"{url}/v1/shops/pod-shop/overview?period=today", reader)
            assert status == 200, body
            return int(json.loads(body)["metrics"]["banner_views"])

        _wait(proc, log_path, lambda: counted() == 40, 60, "40 views counted over HTTP")
        assert _status(f"{url}/v1/shops/pod-shop/overview", "wrong") == 401
        assert any(p.name.endswith("-data") or p.is_dir() for p in data.iterdir()), (
            "Faust made its data directory in UPSELL_DATA_DIR"
        )
        # rotation: a new token works at once after SIGHUP, the old one is revoked by rewriting
        # the file, which the worker notices by itself (mtime/size/inode, once a second)
        rotated = add_pod_token(tokens, ["pod-shop"])
        os.kill(proc.pid, signal.SIGHUP)
        _wait(proc, log_path, lambda: _status(_overview(url), rotated) == 200, 5, "SIGHUP")
        kept = [line for line in tokens.read_text().splitlines() if line and "#" not in line][1:]
        tokens.write_text("\n".join(kept) + "\n")
        _wait(proc, log_path, lambda: _status(_overview(url), reader) == 401, 5, "revoked")
        assert _status(_overview(url), rotated) == 200
        assert proc.poll() is None, "SIGHUP must not stop the worker"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    text = log_path.read_text(errors="replace")
    assert "Permission denied" not in text and "Read-only file system" not in text, text[-3000:]
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{text[-3000:]}"


def _overview(url: str) -> str:
    return f"{url}/v1/shops/pod-shop/overview?period=today"


def _status(url: str, token: str | None = None) -> int:
    try:
        return http_get(url, token, timeout=2.0)[0]
    except OSError:
        return 0


def _wait(
    proc: subprocess.Popen[bytes], log: Path, done: object, timeout_s: float, what: str
) -> None:
    assert callable(done)
    deadline = time.monotonic() + timeout_s
    while not done():
        tail = log.read_text(errors="replace")[-3000:]
        assert proc.poll() is None, f"worker exited with {proc.returncode} before {what}:\n{tail}"
        assert time.monotonic() < deadline, f"not {what} after {timeout_s}s:\n{tail}"
        time.sleep(0.3)
