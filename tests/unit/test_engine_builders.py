"""The worker's app builds either engine through its package's builder, in one shape
(stream/engines/engine.py): whatever UPSELL_ENGINE says, the app gets an engine that says whether
the group gave it its share (``/readyz``) and its last fetch's high watermark (the lag)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stream.app import ENGINES, build_worker
from stream.engines.batch.loop import BatchEngine
from stream.engines.faust.agents import FaustCounting
from stream.settings import EngineName, Settings

SETTINGS = Settings(kafka_bootstrap="127.0.0.1:1", auth_enabled=False)


def test_every_engine_name_has_a_builder() -> None:
    assert set(ENGINES) == {"batch", "faust"}


@pytest.mark.parametrize(("name", "kind"), [("batch", BatchEngine), ("faust", FaustCounting)])
async def test_the_app_builds_the_engine_the_settings_name(name: EngineName, kind: type) -> None:
    worker = build_worker(replace(SETTINGS, engine=name))
    try:
        assert isinstance(worker.engine, kind)
        assert worker.engine.joined is False  # no group joined yet: /readyz says not ready
        assert worker.engine.highwater(SETTINGS.topics.views, 0) is None  # nothing fetched
    finally:
        await worker.store.client.aclose()
