"""A Kafka protocol proxy in front of the embedded broker, for a fault Tansu cannot make itself.

(It also faked retention once, rewriting ListOffsets and fetches below a chosen offset; the
records-lost tests now run on Apache Kafka's real DeleteRecords: tests/conftest.py's ``kafka``.)

- **Refusing writes.** ``refuse(topic)`` answers every produce to ``topic`` with
  TOPIC_AUTHORIZATION_FAILED (a non-retriable error, so the producer's caller sees it, as when an
  ACL is missing for a while); the records go to a scratch topic instead and are never read.

The broker advertises the proxy's port (``EmbeddedBroker.advertised_port``), so every
connection a client opens goes through it. Requests and responses of other kinds pass as bytes.
The proxy runs its own event loop in a thread: tests block their loop at times.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections import deque
from typing import Any

from aiokafka.protocol import produce
from aiokafka.protocol.api import RequestStruct

from stream.devtools.ports import free_port

_PRODUCE = 0
_TOPIC_AUTHORIZATION_FAILED = 29
SCRATCH_TOPIC = "proxy.refused"  # create it with as many partitions as the refused topic


def _request_classes() -> dict[tuple[int, int], Any]:
    found: dict[tuple[int, int], Any] = {}
    for module in (produce,):
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, RequestStruct)):
                continue
            cls: Any = value
            if getattr(cls, "API_VERSION", None) is not None:
                found[(cls.API_KEY, cls.API_VERSION)] = cls
    return found


_CLASSES = _request_classes()


class KafkaProxy:
    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.port = port or free_port()
        self.upstream_port = upstream_port
        self.refused: set[str] = set()
        self.produce_refusals = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KafkaProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        started.result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def refuse(self, topic: str) -> None:
        self.refused.add(topic)

    def accept(self, topic: str) -> None:
        self.refused.discard(topic)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        pending: deque[tuple[int, Any, Any] | None] = deque()  # in request order
        tasks = [
            asyncio.ensure_future(self._requests(reader, up_writer, pending)),
            asyncio.ensure_future(self._responses(up_reader, writer, pending)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.close()

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        up: asyncio.StreamWriter,
        pending: deque[tuple[int, Any, Any] | None],
    ) -> None:
        while True:
            frame = await _read_frame(reader)
            api_key, version = struct.unpack_from(">hh", frame)
            cls = _CLASSES.get((api_key, version))
            if cls is None or api_key != _PRODUCE:
                pending.append(None)
                up.write(_framed(frame))
                continue
            (client_len,) = struct.unpack_from(">h", frame, 8)
            body_at = 10 + max(client_len, 0)
            request = cls.decode(frame[body_at:])
            moved = self._move_refused(request)
            pending.append((api_key, request, moved))
            if moved is not None:
                frame = frame[:body_at] + request.encode()
            up.write(_framed(frame))

    async def _responses(
        self,
        reader: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        pending: deque[tuple[int, Any, Any] | None],
    ) -> None:
        while True:
            frame = await _read_frame(reader)
            entry = pending.popleft() if pending else None
            if entry is not None:
                _api_key, request, moved = entry
                cls = type(request).RESPONSE_TYPE
                response = cls.decode(frame[4:])
                if moved is not None:
                    self._refusals(response, moved)
                frame = frame[:4] + response.encode()
            client.write(_framed(frame))
            await client.drain()

    # -- rewriting ---------------------------------------------------------------------------
    def _move_refused(self, request: Any) -> list[str] | None:
        """Send the records for refused topics to the scratch topic; None when none is."""
        if request.required_acks == 0 or not any(t in self.refused for t, _ in request.topics):
            return None
        names = [t for t, _ in request.topics]
        request.topics = [
            (SCRATCH_TOPIC if t in self.refused else t, parts) for t, parts in request.topics
        ]
        return names

    def _refusals(self, response: Any, names: list[str]) -> None:
        topics = []
        for name, (_t, parts) in zip(names, response.topics, strict=True):
            if _t == SCRATCH_TOPIC and name != SCRATCH_TOPIC:
                self.produce_refusals += 1
                parts = [(p[0], _TOPIC_AUTHORIZATION_FAILED, -1, *p[3:]) for p in parts]
            topics.append((name, parts))
        response.topics = topics


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _framed(frame: bytes) -> bytes:
    return struct.pack(">i", len(frame)) + frame
