"""Record batches written byte for byte, for the unreadable-batch tests: a batch whose codec no
client knows, one whose CRC is wrong, one whose compressed bytes are garbage. No producer library
writes such batches; a broken one (or a disk) can."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

_CRC_AT = 17  # base offset (8), batch length (4), leader epoch (4), magic (1)
_ATTRIBUTES_AT = 21
_CODECS = {"none": 0, "gzip": 1}
FAULTS = ("unknown_codec", "bad_crc", "garbled_gzip")


def batch(values: Sequence[bytes], key: bytes, codec: str = "none") -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=_CODECS[codec],
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=16 * 1024 * 1024,
    )
    for i, value in enumerate(values):
        builder.append(i, timestamp=None, key=key, value=value, headers=[])
    built: bytearray = builder.build()
    return built


def _seal(raw: bytearray) -> bytearray:
    """Write the CRC-32C of everything after it, as a writer that meant these bytes would."""
    struct.pack_into(">I", raw, _CRC_AT, calc_crc32c(bytes(raw[_ATTRIBUTES_AT:])))
    return raw


def unreadable(fault: str, values: Sequence[bytes], key: bytes) -> bytes:
    if fault == "unknown_codec":  # codec id 7: no client has it
        raw = batch(values, key)
        (attributes,) = struct.unpack_from(">h", raw, _ATTRIBUTES_AT)
        struct.pack_into(">h", raw, _ATTRIBUTES_AT, attributes | 0x07)
        return bytes(_seal(raw))
    if fault == "bad_crc":
        raw = batch(values, key)
        raw[-1] ^= 0xFF
        return bytes(raw)
    raw = batch(values, key, "gzip")  # a valid header and CRC over compressed garbage
    for i in range(len(raw) - 20, len(raw) - 4):
        raw[i] ^= 0x5A
    return bytes(_seal(raw))


async def send_raw(bootstrap: str, topic: str, partition: int, data: bytes) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        request = ProduceRequest(None, 1, 30_000, [(topic, [(partition, data)])])
        response = await client.send(leader, request)
        errors = [p[1] for _t, parts in response.topics for p in parts]
        assert errors == [0], f"the broker refused the batch: {response}"
    finally:
        await client.close()
