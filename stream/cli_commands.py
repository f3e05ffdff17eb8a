"""The operator's commands of ``upsell-stream``: ``token``, ``key``, ``send`` and ``subscriber``.

Each returns its exit code and prints its result on stdout. A user error (bad input, a file
that cannot be written, Redis, Kafka or a collector down) is one line on stderr and a non-zero
exit code, never a traceback: :func:`one_line` turns the known failures into that line, and
``stream.cli.main`` prints it (2: bad input or configuration, 1: a service down or refusing).
"""

from __future__ import annotations

import argparse
import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from stream.settings import Settings, SettingsError

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_credential_commands(sub: Subparsers) -> None:
    """``token`` (the API's bearer tokens) and ``key`` (the collector's write keys)."""
    token = sub.add_parser("token", help="manage API tokens (add, list, revoke)")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    add = token_sub.add_parser(
        "add",
        help="print a fresh token and append its SHA-256 to the tokens file",
        description="Prints a new random bearer token once; only its SHA-256 is stored.",
    )
    add.add_argument("--shop", action="append", required=True, help="shop id, or * for all")
    for name, helptext in (
        ("list", "list the tokens' ids (first 12 hex of the SHA-256) and shops"),
        ("revoke", "remove a token from the file; workers refuse it within a second"),
    ):
        action = token_sub.add_parser(name, help=helptext)
        if name == "revoke":
            action.add_argument("token", help="the token (ust_...) or its id from token list")
    for action in token_sub.choices.values():
        action.add_argument("--file", type=Path, help="tokens file (default: UPSELL_API_TOKENS)")

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
    key_add.add_argument(
        "--consent",
        choices=("required", "not-required"),
        default="not-required",
        help="required: the snippet stores and sends nothing before the visitor consents "
        "(upsell.consent(true) or Shopify's Customer Privacy API)",
    )
    key_list = key_sub.add_parser("list", help="list the write keys: id, kind, shop, origins")
    key_list.add_argument("--shop", help="only this shop's keys")
    key_revoke = key_sub.add_parser(
        "revoke",
        help="revoke a write key; every collector refuses it within UPSELL_COLLECTOR_KEY_CACHE_S",
    )
    key_revoke.add_argument("key", help="the key itself (upk_... or usk_...) or its id")


def add_data_commands(sub: Subparsers) -> None:
    """``send`` (one event) and ``subscriber erase``."""
    send = sub.add_parser(
        "send",
        help="send one event (view, click, upgrade, downgrade) via a collector or to Kafka",
        description="Builds one event from the options, checks it with the worker's decoder, "
        "and sends it: with --collector and --key through POST /v1/collect, else straight to "
        "Kafka (--bootstrap, default UPSELL_KAFKA_BOOTSTRAP). Prints what was sent.",
    )
    send.add_argument("kind", choices=("view", "click", "upgrade", "downgrade"))
    send.add_argument("--shop", required=True)
    send.add_argument("--group", help="A/B group id (views and clicks need one)")
    send.add_argument("--variation", help="variation id (with --group)")
    send.add_argument("--subscriber", help="subscriber id (clicks, upgrades, downgrades)")
    send.add_argument("--order", help="order id (upgrades; default: a fresh one)")
    send.add_argument("--revenue", type=int, default=0, help="revenue in minor units")
    send.add_argument("--currency", default="USD", help="ISO 4217 code (default USD)")
    send.add_argument("--from-mrr", type=int, default=0, help="MRR before, minor units")
    send.add_argument("--to-mrr", type=int, default=0, help="MRR after, minor units")
    send.add_argument("--event-id", help="default: a fresh cli-<uuid>")
    send.add_argument("--occurred-at", help="RFC 3339 (default: now)")
    send.add_argument("--collector", help="collector URL, e.g. http://127.0.0.1:6067")
    send.add_argument("--key", help="write key for --collector (usk_... for every kind)")
    send.add_argument("--bootstrap", help="Kafka bootstrap (default UPSELL_KAFKA_BOOTSTRAP)")

    subscriber = sub.add_parser("subscriber", help="a subscriber's data (erase)")
    sub_sub = subscriber.add_subparsers(dest="subscriber_command", required=True, metavar="ACTION")
    erase = sub_sub.add_parser(
        "erase",
        help="erase a subscriber: remove its ledger entries, keep the counts, record who/when",
        description="Removes every conversions-ledger entry of the subscriber in the shop "
        "(subscriber and order ids), keeps the aggregate counts and records the erasure "
        "(when, by whom, how many entries) without the erased id. docs/contract.md, section 7.",
    )
    erase.add_argument("--shop", required=True)
    erase.add_argument("--subscriber", required=True)
    erase.add_argument("--by", help="who asks, recorded with the erasure (default: $USER)")


def quiet_logs() -> None:
    """The clients' own log lines (aiokafka's "Unable connect to ...") stay off stderr: the
    command's one line says what failed. Python's last-resort handler prints them otherwise."""
    import logging

    logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def one_line(exc: BaseException, settings: Settings | None) -> tuple[str, int] | None:
    """The line and exit code for a failure a user can meet, else None (a bug: traceback)."""
    from stream.collector.send import SendError
    from stream.collector.write_keys import WriteKeyError
    from stream.http.api.tokens_cli import TokenCommandError
    from stream.state.erasure import ErasureError

    if isinstance(exc, SettingsError):
        return f"configuration error: {exc}", 2
    if isinstance(exc, SendError):
        return str(exc), exc.code
    if isinstance(exc, (WriteKeyError, TokenCommandError, ErasureError)):
        return str(exc), 2
    if isinstance(exc, RedisError):
        # the URL's user and password (if any) never reach the terminal or a log
        where = re.sub(r"//[^@/]*@", "//", settings.redis_url) if settings else "UPSELL_REDIS_URL"
        return f"Redis at {where} did not answer: {exc}", 1
    if isinstance(exc, (KafkaError, TimeoutError)):
        where = settings.kafka_bootstrap if settings else "UPSELL_KAFKA_BOOTSTRAP"
        return f"Kafka at {where} did not answer: {exc or type(exc).__name__}", 1
    if isinstance(exc, OSError):
        return f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", 1
    return None


def tokens_path(args: argparse.Namespace, env: dict[str, str]) -> Path:
    path = args.file or (Path(env["UPSELL_API_TOKENS"]) if env.get("UPSELL_API_TOKENS") else None)
    if path is None:
        raise SettingsError("UPSELL_API_TOKENS", "give --file or set UPSELL_API_TOKENS")
    return Path(path)


def token(args: argparse.Namespace, env: dict[str, str]) -> int:
    from stream.http.api import tokens_cli
    from stream.http.api.auth import ID_CHARS

    path = tokens_path(args, env)
    if args.token_command == "add":
        print(tokens_cli.add_token(path, args.shop))
    elif args.token_command == "list":
        rows = tokens_cli.list_tokens(path)
        print(f"{'id':<{ID_CHARS}}  shops")
        for token_id, shops in rows:
            print(f"{token_id}  {shops}")
    else:
        gone = tokens_cli.revoke_token(path, args.token)
        print(f"revoked {gone}; every worker refuses it within a second")
    return 0


def key(settings: Settings, args: argparse.Namespace) -> int:
    from stream.collector import write_keys_cli

    if args.key_command == "add":
        lines = asyncio.run(
            write_keys_cli.add_key(
                settings, args.shop, args.kind, args.origin, args.consent == "required"
            )
        )
    elif args.key_command == "list":
        lines = asyncio.run(write_keys_cli.list_keys(settings, args.shop))
    else:
        lines = asyncio.run(write_keys_cli.revoke_key(settings, args.key))
    print("\n".join(lines))
    return 0


def send(settings: Settings, args: argparse.Namespace) -> int:
    from stream.collector import send as sending

    options = sending.EventOptions(
        kind=args.kind,
        shop=args.shop,
        group=args.group,
        variation=args.variation,
        subscriber=args.subscriber,
        order=args.order,
        revenue_minor=args.revenue,
        currency=args.currency,
        from_mrr_minor=args.from_mrr,
        to_mrr_minor=args.to_mrr,
        event_id=args.event_id,
        occurred_at=args.occurred_at,
    )
    now = datetime.now(UTC)
    event = sending.build_event(options, now)
    sending.check(args.kind, event, now, settings.retention_days)
    if args.collector:
        if not args.key:
            raise sending.SendError("--collector needs --key (a usk_ write key)", 2)
        print(sending.via_collector(args.collector, args.key, args.kind, event, 15.0))
        return 0
    bootstrap = args.bootstrap or settings.kafka_bootstrap
    print(asyncio.run(sending.via_kafka(bootstrap, settings.topics, args.kind, event)))
    return 0


def erase(settings: Settings, args: argparse.Namespace, user: str) -> int:
    from stream.state.connection import close_redis, open_redis
    from stream.state.erasure import erase_subscriber

    async def run() -> dict[str, object]:
        redis = open_redis(settings.redis)
        try:
            done = await erase_subscriber(
                redis,
                args.shop,
                args.subscriber,
                by=args.by or user,
                via="cli",
                now=datetime.now(UTC),
            )
        finally:
            await close_redis(redis)
        return done.record()

    record = asyncio.run(run())
    print(
        f"erased: {record['ledger_entries_removed']} ledger entries of the subscriber in shop "
        f"{args.shop}; counts unchanged; recorded at {record['at']} by {record['by']}"
    )
    return 0
