"""``upsell-stream dev``: the whole thing on one machine, for trying it.

Starts the embedded broker and a redis-server on free ports, writes a tokens file with a fresh
admin token, then runs workers (and the demo producer) as child processes with the matching
environment. Ctrl-C or SIGTERM stops everything; nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from stream.devtools.embedded import EmbeddedStack
from stream.devtools.ports import is_free

READY_TIMEOUT_S = 90.0
DEMO_STORE = "demo-store"  # the shop of the /demo-store page, fed only by its banner
SANDBOX = "sandbox"  # the shop of the printed secret key and curl line: your own events


def run_dev(env: Mapping[str, str], demo: bool, rate: float, workers: int, state_dir: Path) -> int:
    api_port = int(env.get("UPSELL_API_PORT") or 6066)
    collector_port = int(env.get("UPSELL_COLLECTOR_PORT") or 6067)
    taken = [p for p in [*range(api_port, api_port + workers), collector_port] if not is_free(p)]
    if taken:  # else the dev stack would talk to whatever holds the port, and fail obscurely
        print(
            f"upsell-stream dev: port {', '.join(map(str, taken))} in use by another process; "
            "stop it, or choose others with UPSELL_API_PORT and UPSELL_COLLECTOR_PORT",
            file=sys.stderr,
        )
        return 2
    state_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # lines reach a pipe as they are printed
    started = time.monotonic()
    children: list[subprocess.Popen[bytes]] = []
    # Ctrl-C, and SIGTERM or SIGHUP through the stack's handler, raise KeyboardInterrupt
    with EmbeddedStack(state_dir) as stack:
        tokens = state_dir / "tokens"
        from stream.http.api.tokens_cli import add_token

        token = add_token(tokens, ["*"])
        child_env = {
            **env,
            "UPSELL_KAFKA_BOOTSTRAP": stack.broker.bootstrap,
            "UPSELL_KAFKA_IDEMPOTENCE": "off",  # the embedded broker refuses InitProducerId
            "UPSELL_REDIS_URL": stack.redis.url,
            "UPSELL_API_TOKENS": str(tokens),
            "UPSELL_DATA_DIR": str(state_dir / "faust"),
        }
        print(f"broker   {stack.broker.bootstrap}   (embedded Tansu, memory only)")
        print(f"redis    {stack.redis.url}   ({stack.redis.binary})")
        print(f"ready in {time.monotonic() - started:.1f}s; logs in {state_dir}/")
        try:
            if not _start_workers(child_env, api_port, workers, state_dir, children):
                return 1
            print(f"workers ready after {time.monotonic() - started:.1f}s")
            collector = _start_collector(env, child_env, stack.redis.url, state_dir, demo)
            if collector is None:
                return 1
            children.append(collector)
            print(f"token    {token}   (paste it into the dashboard; admin: all shops)")
            _print_sandbox(stack.redis.url, collector_port)
            if demo:
                children.append(_start_demo(child_env, rate, state_dir))
            print("Ctrl-C to stop.", flush=True)
            _supervise(children[: workers + 1])
            return 1
        except KeyboardInterrupt:
            pass
        finally:
            _stop_all(children)
    print("stopped.")
    return 0


def _start_workers(
    child_env: Mapping[str, str],
    port: int,
    workers: int,
    state_dir: Path,
    children: list[subprocess.Popen[bytes]],
) -> bool:
    """Start ``workers`` workers on ports from ``port`` on (into ``children`` as they start, so
    an interrupt stops them too); False when one does not become ready."""
    first = len(children)
    for i in range(workers):
        wport = port + i
        worker_env = {**child_env, "UPSELL_API_PORT": str(wport)}
        worker_env["UPSELL_WORKER_ID"] = f"dev-{i + 1}"
        children.append(_spawn(["worker"], worker_env, state_dir / f"worker-{i + 1}.log"))
        print(f"worker   http://127.0.0.1:{wport}/   (dashboard, /v1 API, /metrics)")
    for i in range(workers):
        if not _wait_ready(port + i, children[first + i]):
            print(f"worker {i + 1} did not become ready; see {state_dir}/worker-{i + 1}.log")
            return False
    return True


def _start_demo(
    child_env: Mapping[str, str], rate: float, state_dir: Path
) -> subprocess.Popen[bytes]:
    demo = _spawn(
        ["produce-demo", "--story", "--rate", str(rate), "--count", "100000000"],
        child_env,
        state_dir / "demo.log",
    )
    print(f"demo     90 days of history, then ~{rate:g} views/s live (log: {state_dir}/demo.log)")
    return demo


def _supervise(essential: list[subprocess.Popen[bytes]]) -> None:
    """Return as soon as one of ``essential`` exits; a stop request interrupts the wait."""
    while True:
        for child in essential:
            if child.poll() is not None:
                print(f"a worker or the collector exited ({child.returncode}); see logs")
                return
        time.sleep(0.5)


def _start_collector(
    env: Mapping[str, str],
    child_env: Mapping[str, str],
    redis_url: str,
    state_dir: Path,
    demo: bool,
) -> subprocess.Popen[bytes] | None:
    """The collector on UPSELL_COLLECTOR_PORT (6067); with the demo, its /demo-store page."""
    port = int(env.get("UPSELL_COLLECTOR_PORT") or 6067)
    collector_env = {**child_env, "UPSELL_COLLECTOR_PORT": str(port)}
    secret = ""
    if demo:
        public, secret = _demo_keys(redis_url, port)
        collector_env["UPSELL_COLLECTOR_DEMO_KEY"] = public
        collector_env["UPSELL_COLLECTOR_DEMO_SHOP"] = DEMO_STORE
    child = _spawn(["collector"], collector_env, state_dir / "collector.log")
    try:
        ready = _wait_ready(port, child, "/readyz")
    except BaseException:  # Ctrl-C while waiting: the child is not in run_dev's list yet
        _stop_all([child])
        raise
    if not ready:
        print(f"the collector did not become ready; see {state_dir}/collector.log")
        _stop_all([child])
        return None
    print(f"collector http://127.0.0.1:{port}/v1/collect   (snippet /v1/upsell.js)")
    if demo:
        _publish_demo_store(port, secret)
        print(
            f"store    http://127.0.0.1:{port}/demo-store   "
            f"(click its banner: shop {DEMO_STORE} on the dashboard moves)"
        )
    return child


def _demo_keys(redis_url: str, collector_port: int) -> tuple[str, str]:
    """A public key for the demo store's page (its own origins) and a secret one for its
    settings, both in the dev Redis."""
    import asyncio

    from stream.collector.write_keys import KeyKind, KeyRegistry
    from stream.state.redis import connect

    origins = [f"http://{host}:{collector_port}" for host in ("127.0.0.1", "localhost")]

    async def make() -> tuple[str, str]:
        redis = connect(redis_url, cluster=False)
        try:
            registry = KeyRegistry(redis, 0)
            public = await registry.add(DEMO_STORE, KeyKind.PUBLIC, origins)
            return public, await registry.add(DEMO_STORE, KeyKind.SECRET)
        finally:
            await redis.aclose()

    return asyncio.run(make())


def _print_sandbox(redis_url: str, collector_port: int) -> None:
    """A secret key for the ``sandbox`` shop and a curl line that sends one banner view with
    it: the first event of your own, on the dashboard (shop sandbox) within a second."""
    import asyncio

    from stream.collector.write_keys import KeyKind, KeyRegistry
    from stream.state.redis import connect

    async def make() -> str:
        redis = connect(redis_url, cluster=False)
        try:
            return await KeyRegistry(redis, 0).add(SANDBOX, KeyKind.SECRET)
        finally:
            await redis.aclose()

    key = asyncio.run(make())
    print(f"key      {key}   (secret write key of shop {SANDBOX}: every kind)")
    print(f"try      {curl_line(collector_port, key)}")


def curl_line(collector_port: int, key: str) -> str:
    """One shell line that sends a banner view of shop sandbox; its event id is fresh at each
    run (the collector counts an id once within 15 minutes)."""
    event = (
        '{"events":[{"kind":"banner_view","event_id":"curl-\'"$(date +%s%N)"\'",'
        f'"group_id":"first-test","variation_id":"a","shop_id":"{SANDBOX}"}}]}}'
    )
    return (
        f"curl -sS http://127.0.0.1:{collector_port}/v1/collect "
        f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{event}'"
    )


def _publish_demo_store(collector_port: int, secret_key: str) -> None:
    """The demo store's settings, sent the way a storefront server would: through the collector
    with its secret key. Its shop then shows in the dashboard's picker."""
    body = json.dumps(
        {"events": [{"kind": "shop", "timezone": "UTC", "week_start": "monday", "currency": "USD"}]}
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{collector_port}/v1/collect",
        data=body,
        headers={"Authorization": f"Bearer {secret_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _wait_ready(port: int, child: subprocess.Popen[bytes], path: str = "/readyz/counting") -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and child.poll() is None:
        try:
            url = f"http://127.0.0.1:{port}{path}"
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _spawn(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stream.cli", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
