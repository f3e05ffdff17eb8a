"""Every consumer of ours reads committed records only (aborted transactional writes are never
counted). This checks the consumers' setting; tests/integration/test_real_kafka.py shows
aborted views never counted on Apache Kafka (the embedded broker has no transactions)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stream.app import build_worker, faust_app
from stream.engines.batch.loop import counting_consumer
from stream.engines.faust.tuning import configure_faust
from stream.kafka.clients import make_consumer
from stream.settings import Settings

SETTINGS = Settings(kafka_bootstrap="127.0.0.1:1", auth_enabled=False)


async def test_the_batch_engine_and_the_settings_reader_read_committed() -> None:
    for consumer in (counting_consumer(SETTINGS), make_consumer(SETTINGS.kafka_bootstrap)):
        assert consumer._isolation_level == "read_committed"
        await consumer.stop()


async def test_the_faust_worker_consumer_reads_committed_with_either_engine() -> None:
    """Faust's consumer serves the shops and subscriber-count agents under the batch engine too."""
    worker = build_worker(SETTINGS)  # the batch engine
    await _check_faust_consumer(worker.app)
    await worker.store.client.aclose()
    app = faust_app(replace(SETTINGS, engine="faust"))
    configure_faust(app, SETTINGS)
    await _check_faust_consumer(app)


async def _check_faust_consumer(app: Any) -> None:
    faust_consumer: Any = app.consumer
    thread = faust_consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._isolation_level == "read_committed"
        assert consumer._fetch_max_wait_ms == SETTINGS.fetch_max_wait_ms
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # the consumer thread's own loop, never started here
