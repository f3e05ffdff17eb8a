"""The worker run as the container runs it, and it counts (Kafka in, HTTP out).

Images cannot be built here, so the test reproduces the pod's conditions (the worker Deployment
of deploy/k8s/upsell-stream.yaml, the chart's render, and deploy/Dockerfile;
tests/unit/test_deploy_consistency.py checks the same pod in each role) with what the image
holds, installed in a folder of its own that any user can read (``pod_image``): a copy of this
interpreter, the locked runtime dependencies (deploy/requirements.lock, hash-checked) and the
project installed, not the checkout, which may live in a private (0700) folder that the
worker's user cannot enter:

- the image's numeric unprivileged UID and GID (10001), no supplementary groups, no
  capabilities, ``no_new_privs`` (``setpriv``). Run as root, the worker really is UID 10001.
  Run by another user, a user namespace stands in (``unshare --user``): the worker is 10001
  inside it and the invoking user outside, still without capabilities; where the kernel
  forbids user namespaces the tests skip, saying so;
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
import contextlib
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

from stream.devtools.embedded import EmbeddedBroker
from stream.devtools.ports import free_port
from stream.devtools.workers import ROOT, http_get
from stream.http.api.tokens_cli import add_token
from stream.kafka.topics import ensure_topics
from stream.settings import Settings, Topics
from tests.support.e2e import produce

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


def sandbox(data_dir: Path, image: Path, uid: int, gid: int) -> list[str]:
    """argv prefix: a private mount namespace with a read-only root (the image's folder too)
    except ``data_dir``, then the program as ``uid:gid`` with no groups, no capabilities and no
    new privileges. As root, for real (``setpriv``); otherwise in user namespaces: the outer one
    maps the invoking user to root to make the mounts, the inner one maps it to ``uid:gid``."""
    for tool in ("unshare", "setpriv", "mount"):
        assert shutil.which(tool), f"{tool} is missing (util-linux)"
    setup = (
        f"mount --bind {data_dir} {data_dir} && mount --bind {image} {image}"
        f' && mount -o remount,bind,ro {image} && mount -o remount,bind,ro / && exec "$@"'
    )
    no_privileges = ("--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--")
    outer: tuple[str, ...]
    drop: tuple[str, ...]
    if os.geteuid() == 0:
        outer = ("unshare", "--mount", "--propagation", "private", "--")
        drop = ("setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *no_privileges)
    else:
        outer = (
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--",
        )
        inner = ("unshare", "--user", f"--map-user={uid}", f"--map-group={gid}", "--")
        drop = (*inner, "setpriv", *no_privileges)
    return [*outer, "sh", "-c", setup, "sandbox", *drop]


def user_namespaces_refused() -> str | None:
    """Why this machine cannot reproduce the pod for a user who is not root, or None."""
    if os.geteuid() == 0:
        return None
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return None
    return f"the kernel refuses a user namespace to UID {os.geteuid()}: {done.stderr.strip()}"


@pytest.fixture(scope="module")
def pod_image() -> Iterator[Path]:
    """What the image holds, in a folder any user can read: a copy of this interpreter (its
    binary, libpython and standard library) and, in ``site``, the locked runtime dependencies
    and the project, installed by uv from deploy/requirements.lock as the Dockerfile installs
    them. The pod runs ``image/bin/pythonX.Y -m stream.cli`` with ``PYTHONPATH=image/site``."""
    refused = user_namespaces_refused()
    if refused:
        pytest.skip(refused)
    image = world_tempdir("upsell-image-")
    try:
        prefix, name = Path(sys.base_prefix), f"python{sys.version_info[0]}.{sys.version_info[1]}"
        (image / "bin").mkdir()
        (image / "lib").mkdir()
        shutil.copy2(prefix / "bin" / name, image / "bin" / name)
        for library in (prefix / "lib").glob("libpython*"):
            shutil.copy2(library, image / "lib" / library.name)
        skip = shutil.ignore_patterns("site-packages", "test", "__pycache__", "idlelib")
        shutil.copytree(prefix / "lib" / name, image / "lib" / name, ignore=skip)
        uv = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--system-certs"]
        uv += ["--python", sys.executable]
        lock = ROOT / "deploy" / "requirements.lock"
        subprocess.run([*uv, "--target", str(image / "site"), "-r", str(lock)], check=True)
        subprocess.run([*uv, "--target", str(image / "site"), "--no-deps", str(ROOT)], check=True)
        # whatever the umask: the worker's user reads it all, and writes none of it
        subprocess.run(["chmod", "-R", "u=rwX,go=rX", str(image)], check=True)
        yield image
    finally:
        shutil.rmtree(image, ignore_errors=True)


def world_tempdir(prefix: str) -> Path:
    """A new 0755 folder that the worker's user can reach: under the temp dir when every folder
    above it lets others through (a TMPDIR under a private home does not), else under /tmp."""
    base = Path(tempfile.gettempdir()).resolve()
    reachable = all(p.stat().st_mode & 0o001 for p in (base, *base.parents))
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base if reachable else "/tmp"))
    folder.chmod(0o755)
    return folder


def image_run(image: Path) -> tuple[list[str], dict[str, str]]:
    """The pod's command for ``image`` and the environment that makes it find its parts."""
    name = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    env = {
        "PYTHONPATH": str(image / "site"),
        "LD_LIBRARY_PATH": str(image / "lib"),  # the interpreter's runpath names its original
        "PYTHONNOUSERSITE": "1",
    }
    return [str(image / "bin" / name), "-m", "stream.cli"], env


@pytest.fixture
def pod_dirs() -> Iterator[tuple[Path, Path]]:
    """A data directory owned by the worker's user, and a tokens directory it can only read
    through its group (outside pytest's 0700 tmp tree, which the worker's user cannot enter).
    For a user who is not root, both stay the invoking user's, whom the namespace maps."""
    uid, gid = image_user()
    base = world_tempdir("upsell-pod-")
    try:
        data, secret = base / "data", base / "secret"
        data.mkdir(mode=0o700)
        secret.mkdir()
        secret.chmod(0o750)
        if os.geteuid() == 0:
            os.chown(data, uid, gid)
            os.chown(secret, 0, gid)
        yield data, secret
    finally:
        shutil.rmtree(base, ignore_errors=True)


def add_pod_token(tokens: Path, shops: list[str]) -> str:
    with writable(tokens):
        return add_token(tokens, shops)


@contextlib.contextmanager
def writable(tokens: Path) -> Iterator[None]:
    """Write the Secret's file as Kubernetes does, then leave it root-owned (for the worker's
    group) and 0440. A user who is not root owns it and reads it through the namespace, and
    needs the write bit back for a moment (root writes a 0440 file regardless)."""
    if tokens.exists():
        tokens.chmod(0o640)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            os.chown(tokens, 0, image_user()[1])
        tokens.chmod(0o440)


def view(shop: str, n: int) -> tuple[str, bytes, bytes]:
    event = {
        "event_id": f"pod-{n}",
        "shop_id": shop,
        "occurred_at": datetime.now(UTC).isoformat(),
        "group_id": "g",
        "variation_id": "a",
    }
    return ("view", shop.encode(), orjson.dumps(event))


def test_sandbox_is_read_only_but_the_data_dir(
    pod_image: Path, pod_dirs: tuple[Path, Path]
) -> None:
    data, _ = pod_dirs
    uid, gid = image_user()
    script = (
        "id -u; id -g; "
        f"touch {ROOT}/.probe 2>/dev/null && echo checkout-writable; "
        f"touch {pod_image}/site/.probe 2>/dev/null && echo image-writable; "
        "touch /etc/.upsell-probe 2>/dev/null && echo etc-writable; "
        f"touch {data}/probe && echo data-writable"
    )
    out = subprocess.run(
        [*sandbox(data, pod_image, uid, gid), "sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(uid), str(gid), "data-writable"], out


def test_worker_counts_as_the_pod_runs_it(
    broker: EmbeddedBroker,
    redis_url: str,
    pod_image: Path,
    pod_dirs: tuple[Path, Path],
    tmp_path: Path,
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
    command, image_env = image_run(pod_image)
    settings = Settings.from_env(env)
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    log_path = tmp_path / "pod-worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*sandbox(data, pod_image, uid, gid), *command, "worker"],
            cwd=data,
            env={**env, **image_env},
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
        with writable(tokens):
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
