"""The chat room: Socket.IO and SockJS clients in the same rooms, through one realtime `Hub`.

`ChatApp.mount(router, prefix)` puts the chat on a `fullduplex.Router` (``examples/demo.py``
does, for ``make demo``):

- ``<prefix>/``: the page (``static/``), with socket.io-client from ``node_modules/``;
- ``<prefix>/socket.io/``: Engine.IO, carrying Socket.IO namespace ``/chat`` (WebSocket or
  long-polling);
- ``<prefix>/sockjs/``: SockJS (WebSocket, xhr-streaming, iframe-htmlfile, eventsource,
  polling…), each session speaking plain JSON events (`JSONEventServer`).

Both adapters are members of one `Hub`, so they share rooms, presence and history: that is
the point of a protocol-agnostic hub. Every handler below is written once, for a `Client`
(a Socket.IO socket or a JSON-event connection).

Events, client to server (each with one object argument, answered through the ack):

- ``hello {nick, tab, rooms, resume: {epoch, offset} | null}``: who this tab is and the rooms
  it is in; answers each room's members and either what was missed since ``offset`` (the tab
  was offline briefly: ``recovered`` true) or the room's last messages, and the rooms it was
  refused (``refused``: room -> why);
- ``join {room}`` / ``leave {room}``; ``say {room, text, cid}`` (answers ``{id, ts}`` once the
  message is recorded: the "sent" tick); ``typing {room, typing}``; ``delivered {tab, ids}``
  (the receiver's receipt, forwarded to the sender's tab: the "delivered" tick).

Server to client: ``message`` (recorded in history: it carries an offset), ``presence``
``{room, member, nick, transport, joined}``, ``typing``, ``delivered {ids, by}``.

Recovery is the hub's history, for both protocols alike: a tab remembers the offset of the
last message it got and the server's ``epoch``; on reconnecting it says ``hello`` with them,
re-enters its rooms, and is sent what it missed, once each, in order. After a server restart
(another epoch) it gets each room's last messages instead.

Limits (`ChatLimits`, each a command-line option of ``examples/demo.py``): message length,
messages per second per client (a token bucket: a client beyond its rate is slowed down, by
not reading its next events, and disconnected once ``max_slowed`` events in a row had to
wait),
other events per second, rooms per client and rooms in all. A flood from one tab costs that
tab its connection; nobody else notices.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from fullduplex.realtime import Hub, JSONEventConnection, JSONEventServer, MemoryBackend
from fullduplex.realtime.backends import Broadcast, PresenceChange
from fullduplex.realtime.socketio import Server, Socket
from fullduplex.transports import HTTPExchange, Router, StaticFiles
from fullduplex.transports.engineio import EngineIOEndpoint
from fullduplex.transports.sockjs import SockJSEndpoint

__all__ = ["ChatApp", "ChatLimits", "TokenBucket", "STATIC", "CLIENT_SCRIPT"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
CLIENT_SCRIPT = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
"""socket.io-client as ``make demo`` installs it from npm (``examples/chat/package.json``)."""

NAMESPACE = "/chat"
ROOM_PREFIX = "room:"
TAB_PREFIX = "tab:"
ROOM_NAME = re.compile(r"[\w-]{1,24}")
DEFAULT_ROOMS = ("lobby", "random")
HISTORY_KEPT_S = 7 * 24 * 3600.0
"""Messages stay in history (for the room's backlog) this long while the server runs."""
RECENT_CIDS = 4096
"""Client message ids remembered, so that a message resent after a reconnection is not doubled."""
MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest request body or WebSocket message a page may send (Engine.IO, SockJS)."""
FLOOD_CLOSE_CODE = 4008
FLOOD_REASON = "flooding: too many messages"


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """What one client may do; every limit has a default.

    Args:
        max_message_chars: longest message, in characters.
        max_nick_chars: longest nickname.
        messages_per_s: messages a client may send per second, on average.
        message_burst: messages it may send at once before the rate applies.
        events_per_s: other events (typing, receipts, joins) per second, on average.
        event_burst: other events at once.
        max_slowed: a client slowed down for this many events in a row is disconnected.
        max_rooms_per_client: rooms one tab may be in at once.
        max_rooms: rooms in all (a room exists from its first join while the server runs).
        backlog: messages a tab gets when it joins a room.
        history: messages kept per room, for the backlog and for recovery.
    """

    max_message_chars: int = 500
    max_nick_chars: int = 24
    messages_per_s: float = 2.0
    message_burst: int = 10
    events_per_s: float = 20.0
    event_burst: int = 60
    max_slowed: int = 10
    max_rooms_per_client: int = 8
    max_rooms: int = 50
    backlog: int = 50
    history: int = 500


class TokenBucket:
    """A rate limit that delays rather than refuses: `take` says how long to wait first.

    Args:
        rate_per_s: tokens added per second.
        burst: most tokens held (and the starting amount).
    """

    __slots__ = ("rate_per_s", "burst", "_tokens", "_updated", "_clock")

    def __init__(
        self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()

    def take(self) -> float:
        """Take one token; return the seconds to wait before acting (0 within the burst)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        self._tokens -= 1
        return max(0.0, -self._tokens / self.rate_per_s)


class Client(Protocol):
    """What the handlers need of a connection, Socket.IO or JSON events alike."""

    @property
    def id(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def connected(self) -> bool: ...
    @property
    def rooms(self) -> frozenset[str]: ...
    async def join(self, *rooms: str, info: Any = None) -> None: ...
    async def leave(self, *rooms: str) -> None: ...


class Refused(Exception):
    """A request the client gets an ``{"error": ...}`` answer for."""


def _clean(text: Any, limit: int, what: str) -> str:
    """``text`` without control characters and surrounding blanks, 1 to ``limit`` long."""
    if not isinstance(text, str):
        raise Refused(f"{what} must be text")
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    if not text:
        raise Refused(f"{what} is empty")
    if len(text) > limit:
        raise Refused(f"{what} is longer than {limit} characters")
    return text


def _room_name(value: Any) -> str:
    if not isinstance(value, str) or not ROOM_NAME.fullmatch(value.strip().lower()):
        raise Refused("a room name is 1 to 24 letters, digits, '-' or '_'")
    return value.strip().lower()


def _payload(args: tuple[Any, ...]) -> dict[str, Any]:
    if len(args) != 1 or not isinstance(args[0], dict):
        raise Refused("expected one object")
    return args[0]


def _message(entry: Broadcast) -> dict[str, Any]:
    """A recorded message as the page gets it in a backlog or a replay."""
    return {**entry.args[0], "offset": entry.offset}


class ChatApp:
    """The chat: a hub, its Socket.IO namespace and its SockJS endpoint.

    Args:
        limits: what one client may do.
        ping_interval_ms: Engine.IO heartbeat (a vanished Socket.IO client is noticed
            within about twice this).
    """

    def __init__(self, limits: ChatLimits | None = None, *, ping_interval_ms: int = 5000) -> None:
        self.limits = limits or ChatLimits()
        self.epoch = secrets.token_hex(6)
        """Changes at every start: offsets of another epoch are from an earlier server."""
        self.backend = MemoryBackend(history_size=self.limits.history, history_ttl_s=HISTORY_KEPT_S)
        self.hub = Hub("chat", self.backend)
        self.hub.on_presence(self._on_presence)
        self.rooms: set[str] = set(DEFAULT_ROOMS)
        """Every room joined since the start (bounded by ``limits.max_rooms``)."""
        self._recent_cids: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.socketio = Server(backend=self.backend)
        namespace = self.socketio.of(NAMESPACE, hub=self.hub)
        self.events = JSONEventServer(self.hub)
        # A page never sends more than a few messages of max_message_chars at once.
        self.engineio = EngineIOEndpoint(
            self.socketio.serve,
            ping_interval_ms=ping_interval_ms,
            ping_timeout_ms=5000,
            max_payload_bytes=MAX_PAYLOAD_BYTES,
        )
        self.sockjs = SockJSEndpoint(
            self.events.serve, heartbeat_s=10.0, max_body_bytes=MAX_PAYLOAD_BYTES
        )
        handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "hello": self.hello,
            "join": self.join,
            "leave": self.leave,
            "say": self.say,
            "typing": self.typing,
            "delivered": self.delivered,
        }
        for event, handler in handlers.items():
            namespace.on(event, self._for_socketio(event, handler))
            self.events.on(event, self._for_json_events(event, handler))

    def mount(self, router: Router, prefix: str = "/chat") -> None:
        """Serve the page and both protocols under ``prefix`` of ``router``.

        Raises:
            FileNotFoundError: socket.io-client is not installed (run ``make demo``).
        """
        if not CLIENT_SCRIPT.is_file():
            raise FileNotFoundError(
                f"{CLIENT_SCRIPT} is missing: make demo installs it "
                "(or: cd examples/chat && npm ci)"
            )
        client_script = CLIENT_SCRIPT.read_bytes()

        async def socketio_client(exchange: HTTPExchange) -> None:
            headers = [("Content-Type", "application/javascript; charset=utf-8")]
            await exchange.respond(200, headers, client_script)

        async def to_page(exchange: HTTPExchange) -> None:
            await exchange.respond(308, [("Location", f"{prefix}/")], b"")

        router.route(prefix, to_page)
        router.route(f"{prefix}/socket.io.min.js", socketio_client)
        router.mount(f"{prefix}/socket.io", self.engineio)
        router.mount(f"{prefix}/sockjs", self.sockjs)
        router.mount(prefix, StaticFiles(STATIC))

    async def close(self) -> None:
        """Close every Socket.IO connection and stop the hub."""
        await self.socketio.close()
        await self.engineio.aclose()
        await self.hub.close()

    # --- the adapters ---

    def _for_socketio(
        self, event: str, handler: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def on_event(socket: Socket, *args: Any) -> Any:
            async def kick() -> None:
                await socket.emit("kicked", {"reason": FLOOD_REASON})
                await socket.disconnect()

            if "transport" not in socket.data:
                socket.data["transport"] = f"socket.io {socket.transport}"
            return await self._handle(event, handler, socket, kick, args)

        return on_event

    def _for_json_events(
        self, event: str, handler: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def on_event(connection: JSONEventConnection, *args: Any) -> Any:
            async def kick() -> None:
                await connection.session.close(FLOOD_CLOSE_CODE, FLOOD_REASON)

            if "transport" not in connection.data:
                connection.data["transport"] = f"sockjs {connection.session.transport}"
            return await self._handle(event, handler, connection, kick, args)

        return on_event

    async def _handle(
        self,
        event: str,
        handler: Callable[..., Awaitable[Any]],
        client: Client,
        kick: Callable[[], Awaitable[None]],
        args: tuple[Any, ...],
    ) -> Any:
        data = client.data
        if "buckets" not in data:
            limits = self.limits
            data["buckets"] = {
                "say": TokenBucket(limits.messages_per_s, limits.message_burst),
                "other": TokenBucket(limits.events_per_s, limits.event_burst),
            }
            # Socket.IO runs each event's handler in its own task: this keeps one client's
            # events in the order it sent them.
            data["turn"] = asyncio.Lock()
        async with data["turn"]:
            delay = data["buckets"]["say" if event == "say" else "other"].take()
            data["slowed"] = data.get("slowed", 0) + 1 if delay else 0
            if data["slowed"] > self.limits.max_slowed:
                if client.connected:
                    await kick()
                return {"error": FLOOD_REASON}
            if delay:
                # Slow this client down: while its handler waits, its next events wait unread.
                await asyncio.sleep(delay)
            if not client.connected:
                return {"error": "disconnected"}
            try:
                if event != "hello" and "nick" not in data:
                    raise Refused("say hello first")
                return await handler(client, _payload(args))
            except Refused as refused:
                return {"error": str(refused)}

    # --- the handlers ---

    async def hello(self, client: Client, payload: dict[str, Any]) -> dict[str, Any]:
        """Name the tab, put it in its rooms; answer members and missed messages or backlogs."""
        data = client.data
        data["nick"] = _clean(payload.get("nick"), self.limits.max_nick_chars, "nickname")
        tab = payload.get("tab")
        if not isinstance(tab, str) or not 8 <= len(tab) <= 64:
            raise Refused("tab must be a random id")
        data["tab"] = tab
        await client.join(TAB_PREFIX + tab)
        names = payload.get("rooms")
        if not isinstance(names, list):
            raise Refused("rooms must be a list")
        rooms = list(dict.fromkeys(_room_name(name) for name in names))
        rooms = rooms[: self.limits.max_rooms_per_client]
        answer: dict[str, Any] = {
            "epoch": self.epoch,
            "member": client.id,
            "limits": asdict(self.limits),
            "rooms": {},
            "recovered": False,
        }
        # A remembered room that is refused now (the server restarted with fewer rooms
        # allowed) is left out of the answer; the others go on.
        refused = answer["refused"] = {}
        for room in rooms:
            try:
                answer["rooms"][room] = await self._enter(client, room, backlog=False)
            except Refused as error:
                refused[room] = str(error)
        rooms = list(answer["rooms"])
        resume = payload.get("resume")
        missed = None
        if (
            isinstance(resume, dict)
            and resume.get("epoch") == self.epoch
            and isinstance(resume.get("offset"), str)
        ):
            streams = [ROOM_PREFIX + room for room in rooms]
            missed = await self.hub.history.missed(streams, resume["offset"])
        if missed is not None:
            answer["recovered"] = True
            answer["missed"] = [_message(entry) for entry in missed]
        else:
            for room in rooms:
                answer["rooms"][room]["backlog"] = await self._backlog(room)
        answer["known"] = sorted(self.rooms)
        return answer

    async def join(self, client: Client, payload: dict[str, Any]) -> dict[str, Any]:
        """Enter a room; answer its members and last messages."""
        room = _room_name(payload.get("room"))
        answer = await self._enter(client, room, backlog=True)
        answer["known"] = sorted(self.rooms)
        return answer

    async def leave(self, client: Client, payload: dict[str, Any]) -> dict[str, Any]:
        """Leave a room."""
        room = _room_name(payload.get("room"))
        await client.leave(ROOM_PREFIX + room)
        return {"room": room}

    async def say(self, client: Client, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a message to a room the client is in; answer its id and time once recorded."""
        room = _room_name(payload.get("room"))
        if ROOM_PREFIX + room not in client.rooms:
            raise Refused(f"not in room {room}")
        text = _clean(payload.get("text"), self.limits.max_message_chars, "message")
        cid = payload.get("cid")
        if not isinstance(cid, str) or not 1 <= len(cid) <= 64:
            raise Refused("cid must be the client's message id")
        data = client.data
        # A message resent after a reconnection (its answer was lost) is not sent twice.
        key = (data["tab"], cid)
        sent = self._recent_cids.get(key)
        if sent is not None:
            return sent
        message = {
            "room": room,
            "id": secrets.token_hex(8),
            "nick": data["nick"],
            "member": client.id,
            "tab": data["tab"],
            "cid": cid,
            "text": text,
            "ts": int(time.time() * 1000),
        }
        recorded = await self.hub.broadcast("message", message, to=(ROOM_PREFIX + room,))
        answer = {"id": message["id"], "ts": message["ts"], "offset": recorded.offset}
        self._recent_cids[key] = answer
        while len(self._recent_cids) > RECENT_CIDS:
            self._recent_cids.popitem(last=False)
        return answer

    async def typing(self, client: Client, payload: dict[str, Any]) -> None:
        """Tell the room's others that this client is typing (or stopped); never recorded."""
        room = _room_name(payload.get("room"))
        if ROOM_PREFIX + room not in client.rooms:
            return
        notice = {
            "room": room,
            "member": client.id,
            "nick": client.data["nick"],
            "typing": bool(payload.get("typing")),
        }
        await self.hub.broadcast(
            "typing", notice, to=(ROOM_PREFIX + room,), except_rooms=(client.id,), volatile=True
        )

    async def delivered(self, client: Client, payload: dict[str, Any]) -> None:
        """Forward a receipt for messages to the tab that sent them."""
        tab, ids = payload.get("tab"), payload.get("ids")
        if not isinstance(tab, str) or not isinstance(ids, list):
            return
        ids = [item for item in ids[:100] if isinstance(item, str) and len(item) <= 32]
        receipt = {"ids": ids, "by": client.data["nick"], "member": client.id}
        await self.hub.broadcast("delivered", receipt, to=(TAB_PREFIX + tab,), record=False)

    # --- inside ---

    async def _enter(self, client: Client, room: str, *, backlog: bool) -> dict[str, Any]:
        joined = [name for name in client.rooms if name.startswith(ROOM_PREFIX)]
        if ROOM_PREFIX + room not in joined:
            if len(joined) >= self.limits.max_rooms_per_client:
                raise Refused(f"at most {self.limits.max_rooms_per_client} rooms at once")
            if room not in self.rooms:
                if len(self.rooms) >= self.limits.max_rooms:
                    raise Refused(f"this server has {self.limits.max_rooms} rooms already")
                self.rooms.add(room)
            info = {"nick": client.data["nick"], "transport": client.data["transport"]}
            await client.join(ROOM_PREFIX + room, info=info)
        members = await self.hub.presence(ROOM_PREFIX + room)
        answer: dict[str, Any] = {
            "room": room,
            "members": [{"member": member, **info} for member, info in members.items()],
        }
        if backlog:
            answer["backlog"] = await self._backlog(room)
        return answer

    async def _backlog(self, room: str) -> list[dict[str, Any]]:
        entries = await self.hub.history.last(ROOM_PREFIX + room, self.limits.backlog)
        return [_message(entry) for entry in entries]

    def _on_presence(self, change: PresenceChange) -> None:
        # Every process's hub hears every change: each tells only its own members, so that
        # nobody hears it twice.
        if not change.room.startswith(ROOM_PREFIX) or not isinstance(change.info, dict):
            return
        notice = {
            "room": change.room.removeprefix(ROOM_PREFIX),
            "member": change.member,
            "nick": change.info.get("nick"),
            "transport": change.info.get("transport"),
            "joined": change.joined,
        }
        self.hub.deliver_local(Broadcast("presence", (notice,), frozenset({change.room})))
