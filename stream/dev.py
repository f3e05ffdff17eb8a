"""``upsell-stream dev``: the whole thing on one machine, for trying it.

Starts the embedded broker and a redis-server on free ports, writes a tokens file with a fresh
admin token, then runs workers (and the demo producer) as child processes with the matching
environment. Ctrl-C or SIGTERM stops everything; nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from stream.embedded import EmbeddedStack

READY_TIMEOUT_S = 90.0


def run_dev(env: Mapping[str, str], demo: bool, rate: float, workers: int, state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # lines reach a pipe as they are printed
    port = int(env.get("UPSELL_API_PORT") or 6066)
    started = time.monotonic()
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    with EmbeddedStack(state_dir) as stack:
        tokens = state_dir / "tokens"
        from stream.api.tokens_cli import add_token

        token = add_token(tokens, ["*"])
        child_env = {
            **env,
            "UPSELL_KAFKA_BOOTSTRAP": stack.broker.bootstrap,
            "UPSELL_REDIS_URL": stack.redis.url,
            "UPSELL_API_TOKENS": str(tokens),
            "UPSELL_DATA_DIR": str(state_dir / "faust"),
        }
        print(f"broker   {stack.broker.bootstrap}   (embedded Tansu, memory only)")
        print(f"redis    {stack.redis.url}   ({stack.redis.binary})")
        print(f"ready in {time.monotonic() - started:.1f}s; logs in {state_dir}/")
        try:
            for i in range(workers):
                wport = port + i
                children.append(
                    _spawn(
                        ["worker"],
                        {
                            **child_env,
                            "UPSELL_API_PORT": str(wport),
                            "UPSELL_WORKER_ID": f"dev-{i + 1}",
                        },
                        state_dir / f"worker-{i + 1}.log",
                    )
                )
                print(f"worker   http://127.0.0.1:{wport}/   (dashboard, /v1 API, /metrics)")
            for i in range(workers):
                if not _wait_ready(port + i, children[i]):
                    print(
                        f"worker {i + 1} did not become ready; see {state_dir}/worker-{i + 1}.log"
                    )
                    return 1
            print(f"workers ready after {time.monotonic() - started:.1f}s")
            print(f"token    {token}   (paste it into the dashboard; admin: all shops)")
            if demo:
                children.append(
                    _spawn(
                        ["produce-demo", "--story", "--rate", str(rate), "--count", "100000000"],
                        child_env,
                        state_dir / "demo.log",
                    )
                )
                print(
                    f"demo     90 days of history, then ~{rate:g} views/s live "
                    f"(log: {state_dir}/demo.log)"
                )
            print("Ctrl-C to stop.", flush=True)
            while not stopping:
                for child in children[:workers]:
                    if child.poll() is not None:
                        print(f"a worker exited with {child.returncode}; see {state_dir}/")
                        return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            _stop_all(children)
    print("stopped.")
    return 0


def _wait_ready(port: int, child: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and child.poll() is None:
        try:
            url = f"http://127.0.0.1:{port}/readyz/counting"
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
