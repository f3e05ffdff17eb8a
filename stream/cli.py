"""``upsell-stream``: the console entry point. The only place that reads the environment: once,
in :func:`main`, which hands it to ``Settings.from_env`` (and to ``dev`` for its children)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from stream.settings import Settings, SettingsError

DESCRIPTION = """\
upsell-stream counts subscription-upsell events from Kafka into Redis, exactly once, and serves
live metric snapshots over HTTP. Configuration comes from UPSELL_* environment variables
(see README.md, "Configuration")."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upsell-stream", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serving_commands(sub)
    _development_commands(sub)
    _credential_commands(sub)
    return p


def _serving_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``worker`` and ``collector``: the two process roles of a deployment."""
    sub.add_parser(
        "worker",
        help="run one worker (counting + API) against UPSELL_KAFKA_BOOTSTRAP and UPSELL_REDIS_URL",
        description="Run one worker: consumes the event topics, counts into Redis exactly once, "
        "serves the API on UPSELL_API_PORT. Start several with the same configuration to share "
        "the partitions.",
    )

    restore = sub.add_parser(
        "restore",
        help="rebuild Redis from the state changelog (stop the workers first)",
        description="Rebuild Redis from the compacted state changelog when it lost state (emptied "
        "or older than the changelog); workers do this by themselves at start. See "
        "docs/operations.md, 'Redis lost'.",
    )
    restore.add_argument("--dry-run", action="store_true", help="say what it would do")
    restore.add_argument(
        "--force", action="store_true", help="replace Redis's state even when it looks up to date"
    )
    sub.add_parser(
        "collector",
        help="run one HTTP collector: storefronts POST events, it produces them to Kafka",
        description="Serve POST /v1/collect, /v1/upsell.js, /healthz, /readyz and /metrics on "
        "UPSELL_COLLECTOR_PORT (default 6067). Write keys live in UPSELL_REDIS_URL; events go to "
        "UPSELL_KAFKA_BOOTSTRAP. Start as many as you like behind a load balancer.",
    )


def _development_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dev`` (everything on this machine) and ``produce-demo``."""
    dev = sub.add_parser(
        "dev",
        help="everything on this machine: embedded broker, Redis, a worker, optional demo traffic",
        description="Start an embedded Kafka-compatible broker (Tansu) and a redis-server on free "
        "ports, then a worker on UPSELL_API_PORT (default 6066). Prints where everything listens "
        "and a dashboard token. Ctrl-C stops it all.",
    )
    dev.add_argument("--demo", action="store_true", help="also produce seeded demo traffic")
    dev.add_argument(
        "--rate", type=float, default=3.0, help="demo views per second after the history"
    )
    dev.add_argument("--workers", type=int, default=1, help="how many workers to run")
    dev.add_argument("--dir", type=Path, default=Path(".upsell-dev"), help="state directory")

    demo = sub.add_parser(
        "produce-demo",
        help="produce seeded demo traffic to UPSELL_KAFKA_BOOTSTRAP",
        description="Produce realistic demo events (shop settings first) to any broker.",
    )
    demo.add_argument("--rate", type=float, default=0.0, help="events per second (0 = max)")
    demo.add_argument("--count", type=int, default=10_000, help="how many events")
    demo.add_argument("--seed", type=int, default=7, help="random seed (same seed, same events)")
    demo.add_argument("--shops", type=int, default=5, help="how many shops")
    demo.add_argument("--days", type=int, default=14, help="spread events over this many days")
    demo.add_argument(
        "--story",
        action="store_true",
        help="90 days of history (a true winner, a tie, an SRM group), then live (dev --demo)",
    )


def _credential_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``token`` (the API's bearer tokens) and ``key`` (the collector's write keys)."""
    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    add = token_sub.add_parser(
        "add",
        help="print a fresh token and append its SHA-256 to the tokens file",
        description="Prints a new random bearer token once; only its SHA-256 is stored.",
    )
    add.add_argument("--shop", action="append", required=True, help="shop id, or * for all")
    add.add_argument("--file", type=Path, help="tokens file (default: UPSELL_API_TOKENS)")

    key = sub.add_parser("key", help="manage the collector's write keys (kept in Redis)")
    key_sub = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    key_add = key_sub.add_parser(
        "add",
        help="make a write key for one shop; prints it on the last line",
        description="Public keys (upk_) send banner views and clicks from the given browser "
        "origins; secret keys (usk_) send every kind from a storefront server. Only the key's "
        "SHA-256 is stored, in UPSELL_REDIS_URL.",
    )
    key_add.add_argument("--shop", required=True, help="the shop the key writes for")
    key_add.add_argument("--kind", required=True, choices=("public", "secret"))
    key_add.add_argument(
        "--origin", action="append", default=[], help="allowed browser origin (public keys)"
    )
    key_revoke = key_sub.add_parser(
        "revoke",
        help="revoke a write key; every collector refuses it within UPSELL_COLLECTOR_KEY_CACHE_S",
    )
    key_revoke.add_argument("key", help="the key itself (upk_... or usk_...)")


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    env = dict(os.environ)
    try:
        if args.command == "worker":
            _worker(Settings.from_env(env))
        elif args.command == "dev":
            from stream.devtools.dev import run_dev

            sys.exit(run_dev(env, args.demo, args.rate, args.workers, args.dir))
        elif args.command == "produce-demo":
            _produce_demo(args, Settings.from_env(_without_api_tokens(env)))
        elif args.command == "token":
            _token_add(args, env)
        elif args.command == "restore":
            from stream.services import restore_cli

            settings = Settings.from_env(_without_api_tokens(env))
            sys.exit(restore_cli.main(settings, args.dry_run, args.force))
        elif args.command == "collector":
            _collector(Settings.from_env(_without_api_tokens(env)))
        elif args.command == "key":
            sys.exit(_key(Settings.from_env(_without_api_tokens(env)), args))
    except SettingsError as exc:
        print(f"upsell-stream: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


def _worker(settings: Settings) -> None:
    import faust

    from stream.app import build_worker
    from stream.http.api.auth import TokenFileError
    from stream.logging_setup import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    if not settings.auth_enabled:
        import logging

        logging.getLogger("stream").warning("UPSELL_AUTH=off: the API answers without a token")
    try:
        worker = build_worker(settings)
    except TokenFileError as exc:
        raise SettingsError("UPSELL_API_TOKENS", str(exc)) from None
    tune_gc()
    faust.Worker(
        worker.app,
        loglevel=settings.log_level,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
    ).execute_from_commandline()


def _without_api_tokens(env: dict[str, str]) -> dict[str, str]:
    """The collector, the key commands and the demo producer serve no query API: no tokens file
    is needed."""
    return {**env, "UPSELL_AUTH": "off"}


def _collector(settings: Settings) -> None:
    from stream.collector.app import build_collector
    from stream.collector.server import serve
    from stream.logging_setup import configure_logging

    configure_logging(settings.log_format, settings.log_level)

    async def run() -> None:
        collector = build_collector(settings)
        await serve(
            collector.web_app,
            settings.collector.host,
            settings.collector.port,
            on_start=collector.producer.start_in_background,
            on_stop=collector.close,
        )

    asyncio.run(run())


def _key(settings: Settings, args: argparse.Namespace) -> int:
    from stream.collector.keys_cli import add_key, revoke_key

    if args.key_command == "add":
        return add_key(settings, args.shop, args.kind, args.origin)
    return revoke_key(settings, args.key)


def tune_gc() -> None:
    """The worker holds whole fetch batches (tens of thousands of small objects) alive while it
    aggregates them; with the default thresholds the cyclic collector re-scans them over and
    over. Everything built at start-up is frozen out of collection, and young collections run
    less often. Reference counting frees the batches; the collector only finds cycles."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _produce_demo(args: argparse.Namespace, settings: Settings) -> None:
    from stream.devtools.demo import produce_demo
    from stream.devtools.demo_story import produce_story

    if args.story:
        sent = asyncio.run(
            produce_story(
                settings.kafka_bootstrap,
                settings.topics,
                rate=args.rate or 200.0,
                count=args.count,
                seed=args.seed,
                shops=args.shops,
                partitions=settings.partitions,
            )
        )
        print(f"produced {sent} messages to {settings.kafka_bootstrap}")
        return
    sent = asyncio.run(
        produce_demo(
            settings.kafka_bootstrap,
            settings.topics,
            rate=args.rate or None,
            count=args.count,
            seed=args.seed,
            shops=args.shops,
            days=args.days,
            partitions=settings.partitions,
        )
    )
    print(f"produced {sent} messages to {settings.kafka_bootstrap}")


def _token_add(args: argparse.Namespace, env: dict[str, str]) -> None:
    from stream.devtools.tokens_cli import add_token

    path = args.file or (Path(env["UPSELL_API_TOKENS"]) if env.get("UPSELL_API_TOKENS") else None)
    if path is None:
        raise SettingsError("UPSELL_API_TOKENS", "give --file or set UPSELL_API_TOKENS")
    print(add_token(path, args.shop))


if __name__ == "__main__":
    main()
