"""An answer's head goes out with its body, in one write to the connection."""

from __future__ import annotations

import asyncio

from rdevents.http.connections import _HeadWithBody


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def run(scenario) -> Transport:
    async def main() -> Transport:
        transport = Transport()
        await scenario(_HeadWithBody(transport, asyncio.get_running_loop()), transport)
        return transport
    return asyncio.run(main())


def test_the_head_is_written_with_the_body_and_later_parts_go_straight_through():
    async def scenario(connection, transport):
        connection.write(b"head")
        assert transport.writes == []
        connection.write(b"body")
        assert transport.writes == [b"headbody"]
        connection.write(b"more")
        assert transport.writes == [b"headbody", b"more"]
        await asyncio.sleep(0)
        assert transport.writes == [b"headbody", b"more"]

    run(scenario)


def test_a_head_without_a_body_is_written_at_the_end_of_the_loops_turn():
    async def scenario(connection, transport):
        connection.write(b"head")
        await asyncio.sleep(0)
        assert transport.writes == [b"head"]
        connection.write(b"body")
        assert transport.writes == [b"head", b"body"]

    run(scenario)


def test_closing_writes_the_held_head_first():
    async def scenario(connection, transport):
        connection.write(b"head")
        connection.close()
        assert transport.writes == [b"head"] and transport.closed
        await asyncio.sleep(0)
        assert transport.writes == [b"head"]

    run(scenario)


def test_a_held_head_is_dropped_when_the_connection_closed_meanwhile():
    async def scenario(connection, transport):
        connection.write(b"head")
        transport.close()
        await asyncio.sleep(0)
        assert transport.writes == []
        assert connection.is_closing()

    run(scenario)
