"""``upsell-stream``: the console entry point. The only place that reads the environment: once,
in :func:`main`, which hands it to ``Settings.from_env`` (and to ``dev`` for its children)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from stream import __version__, cli_commands
from stream.settings import Settings, SettingsError

DESCRIPTION = """\
upsell-stream counts subscription-upsell events from Kafka into Redis, exactly once, and serves
live metric snapshots over HTTP. Configuration comes from UPSELL_* environment variables
(see README.md, "Configuration")."""


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line on stderr and exit 2, like every other user error (argparse
    prints the whole usage first); subcommands inherit the class."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="upsell-stream", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"upsell-stream {__version__}")
    sub: argparse._SubParsersAction[argparse.ArgumentParser]
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")  # type: ignore[assignment]
    _serving_commands(sub)
    _development_commands(sub)
    cli_commands.add_credential_commands(sub)
    cli_commands.add_data_commands(sub)
    return p


def _serving_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``worker``, ``api`` and ``collector``: the process roles of a deployment."""
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
    restore.add_argument(
        "--seed",
        action="store_true",
        help="mark all of Redis's state for the changelog again (after a rolling upgrade from a "
        "version without it; the running workers send it); restores nothing",
    )
    sub.add_parser(
        "api",
        help="serve the /v1 API and the dashboard without counting (scale reads apart)",
        description="Serve /v1, the dashboard, /healthz, /readyz and /metrics on "
        "UPSELL_API_PORT from the counters in UPSELL_REDIS_URL; joins no consumer group and "
        "never reads Kafka. Run it beside workers when reads must not share a process with "
        'counting (README, "Process roles").',
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


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    env = dict(os.environ)
    settings: Settings | None = None
    try:
        if args.command == "worker":
            _worker(Settings.from_env(env))
        elif args.command == "api":
            _api(Settings.from_env(env))
        elif args.command == "dev":
            from stream.devtools.dev import run_dev

            sys.exit(run_dev(env, args.demo, args.rate, args.workers, args.dir))
        elif args.command == "token":
            sys.exit(cli_commands.token(args, env))
        else:
            settings = Settings.from_env(_without_api_tokens(env))
            sys.exit(_tool(args, settings, env))
    except Exception as exc:  # a user error is one line; anything else stays a traceback
        known = cli_commands.one_line(exc, settings)
        if known is None:
            raise
        print(f"upsell-stream: {known[0]}", file=sys.stderr)
        sys.exit(known[1])


def _tool(args: argparse.Namespace, settings: Settings, env: dict[str, str]) -> int:
    """The commands that need no token file: the collector, the demo producer, key, send,
    restore and subscriber."""
    if args.command == "collector":
        _collector(settings)
        return 0
    cli_commands.quiet_logs()
    if args.command == "produce-demo":
        _produce_demo(args, settings)
        return 0
    if args.command == "key":
        return cli_commands.key(settings, args)
    if args.command == "send":
        return cli_commands.send(settings, args)
    if args.command == "restore":
        from stream.services import restore_cli

        if args.seed:
            return restore_cli.seed(settings)
        return restore_cli.main(settings, args.dry_run, args.force)
    return cli_commands.erase(settings, args, env.get("USER") or "cli")


def _worker(settings: Settings) -> None:
    import faust

    from stream.app import build_worker
    from stream.http.api.auth import TokenFileError
    from stream.logging_setup import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    if not settings.auth_enabled:
        import logging

        logging.getLogger("stream").warning("UPSELL_AUTH=off: the API answers without a token")
    from stream.services.preflight import StartRefused, preflight, run_apart

    try:
        run_apart(preflight(settings))
    except StartRefused as exc:
        _refused(exc)
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


def _refused(exc: Exception) -> NoReturn:
    """Kafka or Redis refused us: one line, exit 2 (retrying cannot help)."""
    print(f"upsell-stream: cannot start: {exc}", file=sys.stderr)
    sys.exit(2)


def _api(settings: Settings) -> None:
    from stream.http.api.auth import TokenFileError
    from stream.http.api_role import serve_api
    from stream.logging_setup import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    try:
        asyncio.run(serve_api(settings))
    except TokenFileError as exc:
        raise SettingsError("UPSELL_API_TOKENS", str(exc)) from None


def _without_api_tokens(env: dict[str, str]) -> dict[str, str]:
    """The collector, the key commands and the demo producer serve no query API: no tokens file
    is needed."""
    return {**env, "UPSELL_AUTH": "off"}


def _collector(settings: Settings) -> None:
    from stream.collector.app import build_collector
    from stream.logging_setup import configure_logging
    from stream.web.serve import serve_until_stopped

    configure_logging(settings.log_format, settings.log_level)

    from stream.services.preflight import StartRefused, preflight

    async def run() -> None:
        try:  # the collector keeps no counts in Redis: its configuration is the worker's check
            await preflight(settings, redis_config=False)
        except StartRefused as exc:
            _refused(exc)
        collector = build_collector(settings)
        await serve_until_stopped(
            collector.web_app,
            settings.collector.host,
            settings.collector.port,
            name="collector",
            on_start=collector.producer.start_in_background,
            on_stop=collector.close,
        )

    asyncio.run(run())


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
                settings.kafka,
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
            settings.kafka,
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


if __name__ == "__main__":
    main()
