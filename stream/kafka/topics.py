"""Create the service's topics when missing (several workers may race to do it)."""

from __future__ import annotations

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.kafka.clients import make_admin
from stream.kafka.security import KafkaTarget
from stream.settings import Topics

RETENTION_MS = str(7 * 24 * 3600 * 1000)


async def ensure_topics(
    target: KafkaTarget, topics: Topics, partitions: int, replication: int = 1, min_insync: int = 1
) -> list[str]:
    """Create the missing topics; returns the names created. The shops topic and the state
    changelog are compacted; every topic gets an explicit retention.ms (some brokers leave it out
    otherwise) and ``min.insync.replicas`` (writes with acks=all need that many replicas in
    sync)."""
    admin = make_admin(target)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for name in topics.all:
            if name in existing:
                continue
            config = {"retention.ms": RETENTION_MS}
            if name in (topics.shops, topics.changelog):
                config = {"cleanup.policy": "compact", "retention.ms": "-1"}
            config["min.insync.replicas"] = str(min_insync)
            wanted.append(NewTopic(name, partitions, replication, topic_configs=config))
        if not wanted:
            return []
        try:
            response = await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            return []
        created = []
        for item in getattr(response, "topic_errors", []):
            name, code = item[0], item[1]
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"creating topic {name} failed with error code {code}")
        return created
    finally:
        await admin.close()
