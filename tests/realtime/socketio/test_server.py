"""The Socket.IO server over in-memory sessions: namespaces, events, acks, rooms, recovery,
the slow-consumer policy and bad input. (The real transports and clients are in
test_interop.py and test_suites.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fullduplex.realtime.socketio import (
    AckTimeout,
    ConnectRefused,
    Recovery,
    Server,
    Socket,
)

from ..support import MemorySession


class Client:
    """The test's end of one connection: raw Socket.IO packets (without Engine.IO's "4")."""

    def __init__(self, server: Server) -> None:
        self.session = MemorySession()
        self.task = asyncio.create_task(server.serve(self.session))

    def send(self, *messages: str | bytes) -> None:
        self.session.client_send(*messages)

    async def recv(self, timeout: float = 2.0) -> str | bytes:
        return await self.session.client_recv(timeout)

    async def recv_json(self, prefix: str) -> Any:
        message = await self.recv()
        assert isinstance(message, str) and message.startswith(prefix), message
        return json.loads(message[len(prefix) :])

    async def connect(
        self, namespace: str = "/", auth: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        head = "0" if namespace == "/" else f"0{namespace},"
        self.send(head + (json.dumps(auth) if auth is not None else ""))
        answer: dict[str, Any] = await self.recv_json(head)
        return answer

    async def closed(self, timeout: float = 2.0) -> int | None:
        async with asyncio.timeout(timeout):
            await self.task
        return self.session.close_code

    async def nothing_more(self) -> None:
        # The point: nothing arrives. No event says so; 50 ms without a message does.
        await asyncio.sleep(0.05)
        assert self.session.client_pending() == []


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    sio = Server(connect_timeout_s=5)

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args

    @sio.on("join")
    async def join(socket: Socket, room: str) -> str:
        await socket.join(room)
        return "joined"

    @sio.on("to-room")
    async def to_room(socket: Socket, room: str, payload: Any) -> None:
        await sio.to(room).emit("room-message", payload)

    yield sio
    await sio.close()


async def test_client_connects_to_the_main_namespace(server: Server) -> None:
    client = Client(server)
    answer = await client.connect()
    assert set(answer) == {"sid"}
    assert answer["sid"] in server.of("/").sockets


async def test_connect_handler_sees_the_auth_payload_and_emits_first(server: Server) -> None:
    @server.on("connect")
    async def connect(socket: Socket) -> None:
        await socket.emit("auth", socket.handshake.auth)

    client = Client(server)
    await client.connect(auth={"token": "123"})
    assert await client.recv() == '2["auth",{"token":"123"}]'


async def test_middleware_refuses_with_connect_error(server: Server) -> None:
    @server.use
    async def check(socket: Socket, auth: dict[str, Any]) -> None:
        if auth.get("token") != "good":
            raise ConnectRefused("not authorized", {"hint": "token"})
        socket.data["user"] = "ann"

    client = Client(server)
    client.send('0{"token":"bad"}')
    assert await client.recv() == '4{"message":"not authorized","data":{"hint":"token"}}'
    await client.connect(auth={"token": "good"})
    (socket,) = server.of("/").sockets.values()
    assert socket.data == {"user": "ann"}


async def test_a_failing_middleware_refuses_with_a_server_error(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    @server.use
    def broken(socket: Socket, auth: dict[str, Any]) -> None:
        raise RuntimeError("bug")

    client = Client(server)
    client.send("0")
    assert await client.recv() == '4{"message":"server error"}'
    assert "middleware of / failed" in caplog.text
    client.send("0/custom")
    assert await client.recv() == '4/custom,{"message":"Invalid namespace"}'


async def test_unknown_namespace_is_refused(server: Server) -> None:
    client = Client(server)
    client.send("0/random")
    assert await client.recv() == '4/random,{"message":"Invalid namespace"}'
    await client.connect()  # the connection is still usable


async def test_event_with_ack_gets_the_handlers_return_value(server: Server) -> None:
    client = Client(server)
    await client.connect()
    client.send('2456["echo",1,"2",{"3":[false]}]')
    assert await client.recv() == '3456[1,"2",{"3":[false]}]'


async def test_binary_event_and_binary_ack(server: Server) -> None:
    client = Client(server)
    await client.connect()
    client.send(
        '52-789["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
        b"\x01",
        b"\x02",
    )
    assert (
        await client.recv() == '62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    )
    assert await client.recv() == b"\x01"
    assert await client.recv() == b"\x02"


async def test_event_without_ack_request_gets_no_ack(server: Server) -> None:
    client = Client(server)
    await client.connect()
    client.send('2["echo",1]')
    await client.nothing_more()


async def test_server_call_waits_for_the_clients_ack(server: Server) -> None:
    client = Client(server)
    await client.connect()
    (socket,) = server.of("/").sockets.values()
    call = asyncio.create_task(socket.call("question", 1, timeout=2))
    assert await client.recv() == '20["question",1]'
    client.send('30["answer",2]')
    assert await call == ("answer", 2)


async def test_connect_handler_can_wait_for_the_clients_ack(server: Server) -> None:
    answers: list[Any] = []

    @server.on("connect")
    async def connect(socket: Socket) -> None:
        answers.append(await socket.call("who-are-you", timeout=2))

    client = Client(server)
    await client.connect()
    assert await client.recv() == '20["who-are-you"]'
    client.send('30["ann"]')
    client.send('21["echo","after"]')
    assert await client.recv() == '31["after"]'
    assert answers == ["ann"]


async def test_volatile_emit_to_one_socket(server: Server) -> None:
    client = Client(server)
    await client.connect()
    (socket,) = server.of("/").sockets.values()
    await socket.volatile.emit("v", 1)
    assert await client.recv() == '2["v",1]'


async def test_server_call_times_out(server: Server) -> None:
    client = Client(server)
    await client.connect()
    (socket,) = server.of("/").sockets.values()
    with pytest.raises(AckTimeout):
        await socket.call("question", timeout=0.05)
    # a late ack, and one for an id never used, are ignored
    client.send("30[]", "399999[]")
    client.send('21["echo"]')
    assert await client.recv() == '20["question"]'
    assert await client.recv() == "31[]"


async def test_room_broadcast_reaches_members_only(server: Server) -> None:
    member, other = Client(server), Client(server)
    await member.connect()
    await other.connect()
    member.send('21["join","r"]')
    assert await member.recv() == '31["joined"]'
    other.send('2["to-room","r",{"x":1}]')
    assert await member.recv() == '2["room-message",{"x":1}]'
    await other.nothing_more()


async def test_namespaces_share_one_connection_and_stay_isolated(server: Server) -> None:
    custom = server.of("/custom")
    left_custom = asyncio.Event()

    @custom.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        left_custom.set()

    @custom.on("join")
    async def join(socket: Socket, room: str) -> None:
        await socket.join(room)

    client = Client(server)
    await client.connect()
    await client.connect("/custom")
    client.send('2/custom,["join","r"]', '21["join","r2"]')
    assert await client.recv() == '31["joined"]'
    await server.of("/").to("r").emit("main-only")
    await custom.to("r").emit("custom-only")
    assert await client.recv() == '2/custom,["custom-only"]'
    await client.nothing_more()
    # leaving one namespace keeps the other
    client.send("1/custom,")
    await left_custom.wait()
    assert custom.sockets == {}
    client.send('21["echo","still"]')
    assert await client.recv() == '31["still"]'
    # and joining it again works
    await client.connect("/custom")


async def test_disconnecting_handler_still_sees_the_rooms(server: Server) -> None:
    seen: list[tuple[str, frozenset[str]]] = []

    @server.on("disconnecting")
    async def disconnecting(socket: Socket, reason: str) -> None:
        seen.append((reason, socket.rooms))

    @server.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        seen.append((reason, socket.rooms))

    client = Client(server)
    sid = (await client.connect())["sid"]
    client.send('21["join","r"]')
    await client.recv()
    await client.session.close()
    await client.closed()
    assert seen == [("transport close", frozenset({sid, "r"})), ("transport close", frozenset())]


async def test_presence_is_right_just_after_a_client_vanishes(server: Server) -> None:
    stays, vanishes = Client(server), Client(server)
    stays_sid = (await stays.connect())["sid"]
    await vanishes.connect()
    for client in (stays, vanishes):
        client.send('21["join","r"]')
        await client.recv()
    assert len(await server.of("/").presence("r")) == 2
    vanishes.session.vanish()
    await vanishes.closed()
    assert await server.of("/").presence("r") == {stays_sid: None}


@pytest.mark.parametrize(
    "messages",
    [
        ["abc"],
        ["2{}"],
        ['2abc["echo",1]'],
        ['2["connect"]'],
        ["5-[]"],
        ['52-["echo",{"_placeholder":true,"num":0}]', b"a", b"b"],
        ['51-["echo",{"_placeholder":true,"num":0}]', "2[]"],
        [b"\x00"],
        ['2123456789012345678["echo"]'],
        ['2/custom,["echo"]'],  # a namespace the client did not connect to
        ['4{"message":"client error"}'],
    ],
)
async def test_invalid_input_closes_the_connection(
    server: Server, messages: list[str | bytes]
) -> None:
    client = Client(server)
    await client.connect()
    client.send(*messages)
    assert await client.closed() == 1002


async def test_first_packet_must_be_a_connect(server: Server) -> None:
    client = Client(server)
    client.send('2["echo"]')
    assert await client.closed() == 1002


async def test_connection_without_connect_is_closed_after_the_timeout() -> None:
    sio = Server(connect_timeout_s=0.1)
    client = Client(sio)
    assert await client.closed() == 1008


async def test_slow_consumer_is_disconnected_and_others_are_not_delayed() -> None:
    sio = Server(max_queue_messages=10)
    slow, fast = Client(sio), Client(sio)
    await slow.connect()
    await fast.connect()
    slow.session.writable.clear()  # stops reading
    for n in range(20):
        await sio.emit("tick", n)
        await asyncio.sleep(0)  # the fast client's writer keeps up; the slow one's cannot
    assert [await fast.recv() for _ in range(20)][-1] == '2["tick",19]'
    assert await slow.closed() == 1008
    assert slow.session.close_reason == "slow consumer: send queue full"
    await sio.close()


async def test_volatile_broadcast_is_dropped_for_a_client_that_is_behind() -> None:
    sio = Server()
    client = Client(sio)
    await client.connect()
    client.session.writable.clear()
    for n in range(40):
        await sio.of("/").volatile.emit("v", n)
    await sio.emit("reliable")
    client.session.writable.set()
    received = [await client.recv() for _ in range(33)]  # 32 (the backlog) + 1
    assert received[-1] == '2["reliable"]'
    await client.nothing_more()
    assert client.session.close_code is None
    await sio.close()


# --- connection-state recovery ---


@pytest.fixture
async def recovering() -> AsyncIterator[Server]:
    sio = Server(recovery=Recovery(max_disconnection_s=5))

    @sio.on("join")
    async def join(socket: Socket, room: str) -> None:
        await socket.join(room, info={"nick": "ann"})

    @sio.on("connect")
    async def connect(socket: Socket) -> None:
        socket.data.setdefault("connects", 0)
        socket.data["connects"] += 1

    yield sio
    await sio.close()


def offset_of(message: str | bytes) -> str:
    assert isinstance(message, str)
    offset = json.loads(message[1:])[-1]
    assert isinstance(offset, str)
    return offset


async def test_recovered_client_gets_missed_events_once_in_order(recovering: Server) -> None:
    client = Client(recovering)
    first = await client.connect()
    assert set(first) == {"sid", "pid"}
    client.send('21["join","r"]')
    assert await client.recv() == "31[]"  # joined
    await recovering.to("r").emit("seen", 0)
    offset = offset_of(await client.recv())
    client.session.vanish()
    await client.closed()

    for n in range(1, 4):
        await recovering.to("r").emit("missed", n)
    await recovering.to("elsewhere").emit("not-for-me")
    await recovering.emit("everyone", 4)

    again = Client(recovering)
    answer = await again.connect(auth={"pid": first["pid"], "offset": offset, "token": "t"})
    assert answer == first
    messages = [json.loads(str(await again.recv())[1:]) for _ in range(4)]
    assert [m[:-1] for m in messages] == [
        ["missed", 1],
        ["missed", 2],
        ["missed", 3],
        ["everyone", 4],
    ]
    await again.nothing_more()
    (socket,) = recovering.of("/").sockets.values()
    assert socket.recovered
    assert socket.rooms == {first["sid"], "r"}
    assert await recovering.of("/").presence("r") == {first["sid"]: {"nick": "ann"}}
    assert socket.data == {"connects": 2}
    assert socket.handshake.auth == {"token": "t"}
    # live events continue after the replay
    await recovering.to("r").emit("live")
    assert json.loads(str(await again.recv())[1:])[0] == "live"


async def test_private_emits_are_recovered_too(recovering: Server) -> None:
    client = Client(recovering)
    first = await client.connect()
    (socket,) = recovering.of("/").sockets.values()
    await socket.emit("private", 1)
    offset = offset_of(await client.recv())
    client.session.vanish()
    await client.closed()
    await recovering.to(first["sid"]).emit("private", 2)
    again = Client(recovering)
    await again.connect(auth={"pid": first["pid"], "offset": offset})
    assert json.loads(str(await again.recv())[1:])[:-1] == ["private", 2]


async def test_unknown_session_or_offset_starts_afresh(recovering: Server) -> None:
    client = Client(recovering)
    first = await client.connect()
    client.session.vanish()
    await client.closed()
    again = Client(recovering)
    answer = await again.connect(auth={"pid": first["pid"], "offset": "not-an-offset"})
    assert answer["sid"] != first["sid"] and answer["pid"] != first["pid"]
    stranger = Client(recovering)
    answer = await stranger.connect(auth={"pid": "made-up", "offset": "1"})
    assert answer["sid"] != first["sid"]
    (socket, *_) = [s for s in recovering.of("/").sockets.values() if s.id == answer["sid"]]
    assert not socket.recovered


async def test_a_client_that_said_goodbye_is_not_recovered(recovering: Server) -> None:
    client = Client(recovering)
    first = await client.connect()
    await recovering.emit("e")
    offset = offset_of(await client.recv())
    said_goodbye = asyncio.Event()

    @recovering.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        said_goodbye.set()

    client.send("1")
    await said_goodbye.wait()
    again = Client(recovering)
    answer = await again.connect(auth={"pid": first["pid"], "offset": offset})
    assert answer["sid"] != first["sid"]


async def test_handlers_of_every_kind_ack_their_return_value() -> None:
    sio = Server(connect_timeout_s=5)
    release = asyncio.Event()

    @sio.on("plain")
    def plain(socket: Socket, value: Any) -> Any:
        return value

    @sio.on("waits")
    async def waits(socket: Socket, value: Any) -> tuple[Any, ...]:
        await release.wait()  # suspends: the rest runs in a task
        return (value, "later")

    @sio.on("future")
    def future(socket: Socket, value: Any) -> asyncio.Future[Any]:
        done = asyncio.get_running_loop().create_future()
        done.set_result([value])
        return done

    @sio.on("nothing")
    async def nothing(socket: Socket) -> None:
        return None

    client = Client(sio)
    await client.connect()
    client.send('21["waits",1]', '22["plain",2]', '23["future",3]', '24["nothing"]')
    # Handlers that return at once ack at once, in order; the one that waits does not hold
    # up the events after it, and an awaitable returned is awaited in a task.
    assert [await client.recv() for _ in range(3)] == ["32[2]", "34[]", "33[[3]]"]
    release.set()
    assert await client.recv() == '31[1,"later"]'
    await sio.close()


async def test_a_failing_handler_gets_no_ack_and_the_connection_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sio = Server(connect_timeout_s=5)

    @sio.on("fails")
    async def fails(socket: Socket) -> None:
        raise RuntimeError("broken")

    @sio.on("fails-later")
    async def fails_later(socket: Socket) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("broken later")

    @sio.on("ok")
    def ok(socket: Socket) -> str:
        return "fine"

    client = Client(sio)
    await client.connect()
    client.send('21["fails"]', '22["fails-later"]', '23["ok"]')
    assert await client.recv() == '33["fine"]'
    await client.nothing_more()
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "handler for 'fails' in / failed",
        "handler for 'fails-later' in / failed",
    ]
    await sio.close()
