"""The retention sweep: deletes the counter keys of shop-local days past the retention.

Counter keys carry no TTL (see stream/state/retention.py for why and for the rule). Every worker
runs this service; once a UTC day the first one to claim the day's sweep in Redis walks the
keyspace and deletes the expired days' keys, the others skip. A sweep cut short (Redis lost, the
worker killed) leaves the rest to the next day's, which deletes every day up to its own cutoff:
a key outlives its day by at most one more day, within the rule's two days of slack.
"""

from __future__ import annotations

import contextlib
import logging
import time

from mode import Service

from stream.dates.clock import Clock
from stream.state.retention import last_expired_day, shops_first_kept_day
from stream.state.store import RetentionStore, StoreUnavailable
from stream.telemetry import Telemetry

log = logging.getLogger(__name__)

CLAIM_TTL_S = 3 * 86_400  # longer than a day: one sweep per cutoff day


class RetentionSweep(Service):
    def __init__(
        self,
        *,
        store: RetentionStore,
        telemetry: Telemetry,
        clock: Clock,
        retention_days: int,
        interval_s: float = 3_600.0,
        first_delay_s: float = 10.0,
    ) -> None:
        super().__init__()
        self.store = store
        self.telemetry = telemetry
        self.clock = clock
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.first_delay_s = first_delay_s

    async def on_start(self) -> None:
        self.add_future(self._run())

    async def _run(self) -> None:
        await self.sleep(self.first_delay_s)
        while not self.should_stop:
            try:
                await self.sweep_once()
                self.telemetry.retention_sweep_last_success.set_to_current_time()
            except StoreUnavailable as exc:
                self.telemetry.redis_errors.labels("retention").inc()
                log.warning("retention sweep cut short, retried in an hour: %s", exc)
            await self.sleep(self.interval_s)

    async def sweep_once(self) -> int | None:
        """Sweep if no worker has swept up to today's cutoff yet: returns the number of keys
        deleted, or None when another sweep has that cutoff."""
        now_s = self.clock().timestamp()
        last_day = last_expired_day(now_s, self.retention_days)
        if not await self.store.claim_sweep(last_day, CLAIM_TTL_S):
            return None
        start = time.perf_counter()
        try:
            deleted = await self.store.delete_days_through(last_day)
            first_kept = shops_first_kept_day(now_s, self.retention_days)
            shops = await self.store.trim_shops(int(now_s // 86_400), first_kept)
        except StoreUnavailable:
            with contextlib.suppress(StoreUnavailable):  # another worker, or this one next hour
                await self.store.release_sweep(last_day)
            raise
        seconds = time.perf_counter() - start
        with contextlib.suppress(StoreUnavailable):  # the keys are deleted: only the mark is lost
            await self.store.finish_sweep(last_day)
        self.telemetry.retention_deleted_keys.inc(deleted)
        self.telemetry.retention_sweep_seconds.set(seconds)
        log.info(
            "retention sweep: %d keys of days through %s deleted, %d shops last seen before "
            "then left the shop list, in %.1f s",
            deleted,
            last_day,
            shops,
            seconds,
        )
        return deleted
