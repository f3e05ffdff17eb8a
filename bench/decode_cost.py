"""``python -m bench.decode_cost``: the decoder's cost per event, before and after its fast path.

One process, no broker: the bench stream's records (90 % views, 9.5 % clicks, 0.5 % upgrades)
decoded by ``orjson.loads`` alone (the floor every row pays), by the contract's validator
(``schemas.decode.check``, the path every event took before the typed fast path) and by the
worker's :class:`schemas.decoder.Decoder`. The three run in interleaved rounds and each keeps its
best round, so a load spike on a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from bench import data
from schemas.decode import check
from schemas.decoder import Decoder, TimeBounds
from schemas.models import Kind

_KINDS = {"views": Kind.VIEW, "clicks": Kind.CLICK, "upgrades": Kind.UPGRADE}
Records = list[tuple[Kind, bytes, bytes]]


def _round(records: Records, decode: Callable[[Kind, bytes, bytes], object]) -> float:
    start = time.perf_counter()
    for kind, key, value in records:
        decode(kind, key, value)
    return time.perf_counter() - start


def measure(n_events: int = 100_000, n_shops: int = 50, rounds: int = 5) -> dict[str, float]:
    """Best µs per event of each decoder over ``rounds`` interleaved rounds."""
    now = datetime.now(UTC)
    records = [(_KINDS[k], key, v) for k, key, v in data.events(n_events, n_shops, now=now)]
    bounds = TimeBounds.at(now, 800)
    decoder = Decoder()

    def validator(kind: Kind, key: bytes, raw: bytes) -> object:
        return check(kind, key, raw, bounds.latest, bounds.oldest, bounds.retention_days)

    variants: dict[str, Callable[[Kind, bytes, bytes], object]] = {
        "orjson_loads_us": lambda _kind, _key, raw: orjson.loads(raw),
        "validator_us": validator,
        "decoder_us": lambda kind, key, raw: decoder.decode(kind, key, raw, bounds),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, decode in variants.items():
            best[name] = min(best[name], _round(records, decode))
    return {name: round(1e6 * s / len(records), 2) for name, s in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--shops", type=int, default=50)
    args = parser.parse_args()
    r = measure(args.events, args.shops)
    print(
        f"per event: orjson.loads {r['orjson_loads_us']} us, validator {r['validator_us']} us, "
        f"Decoder {r['decoder_us']} us ({r['validator_us'] / r['decoder_us']:.1f}x faster)"
    )


if __name__ == "__main__":
    main()
