"""The same scripted conversations, run by Chromium's WebSocket and by `fullduplex.WebSocket`.

Each `Scenario` says what the client does (subprotocols to offer, ``binaryType``, what to send
or close when the connection opens or the n-th message arrives) against one path of the
scripted server (`whatwg_server`). The JavaScript runner and `run_fullduplex` interpret it the
same way and record every event as it is dispatched: its type, ``readyState`` at that moment,
and its fields; plus ``bufferedAmount`` after each action. The two records must be identical.

Long data is recorded by length and SHA-256. After the ``close`` event, both runners wait a
little more, so that an event dispatched after ``close`` would show up as a difference.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from fullduplex import Blob, CloseEvent, DOMException, Event, MessageEvent, WebSocket

from .whatwg_server import scripted_server

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


AFTER_CLOSE_S = 0.25
"""How long each runner keeps recording after the close event."""

Action = list[Any]
"""``["send_text", text]``, ``["send_text_of_size", unit, count]``, ``["send_bytes", size]``
(bytes ``i % 251``), ``["close"]``, ``["close", code]``, ``["close", code, reason]``."""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    protocols: list[str] | None = None
    binary_type: str | None = None
    at_start: list[Action] = field(default_factory=list)
    on_open: list[Action] = field(default_factory=list)
    on_message: dict[str, list[Action]] = field(default_factory=dict)
    """Actions run after the n-th message's event is recorded, by n ("1", "2"...)."""
    scheme: str = "ws"
    mute: bool = False
    """Connect to the server that never answers the handshake."""


SCENARIOS = [
    Scenario(
        "normal_close",
        "/echo",
        on_open=[["send_text", "héllo ☃"], ["send_bytes", 3]],
        on_message={"2": [["close", 1000, "done"]]},
    ),
    Scenario(
        "client_close_with_code_and_reason",
        "/echo",
        on_open=[["close", 4000, "bye ☃"]],
    ),
    Scenario(
        "client_close_without_code_then_send",
        "/echo",
        on_open=[["send_text", "x"], ["close"], ["send_text", "yy"], ["close", 1000]],
    ),
    Scenario(
        "messages_after_close_are_not_delivered",
        "/echo",
        on_open=[["send_text", "echoed after close()"], ["close", 1000]],
    ),
    Scenario(
        "server_close_with_code_and_reason", "/greet-and-close?code=4001&reason=ciao+%E2%98%83"
    ),
    Scenario("server_close_without_code", "/greet-and-close"),
    Scenario("refused_handshake", "/reject"),
    Scenario("tcp_reset", "/drop"),
    Scenario("protocol_error", "/protocol-error"),
    Scenario("unsupported_subprotocol", "/echo", protocols=["v9.example"]),
    Scenario(
        "subprotocol_chosen",
        "/echo",
        protocols=["v9.example", "chat"],
        on_open=[["close"]],
    ),
    Scenario("close_while_connecting", "/", mute=True, at_start=[["close"]]),
    Scenario(
        "large_messages",
        "/echo",
        binary_type="arraybuffer",
        # More than fullduplex.connect's default limit of 1 MiB.
        on_open=[["send_text_of_size", "fullduplex ☃ ", 100_000], ["send_bytes", 2_000_000]],
        on_message={"2": [["close", 1000]]},
    ),
    Scenario(
        "http_url_with_dot_segments",
        "/a/../echo?q=1 2",
        scheme="http",
        on_open=[["close", 1000]],
    ),
]


# --- Chromium ----------------------------------------------------------------------------------

RUN_IN_CHROMIUM = """
async ([url, sc, afterCloseMs]) => {
  const log = [];
  const pending = [];
  const hex = (buffer) => [...new Uint8Array(buffer)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (bytes) => hex(await crypto.subtle.digest("SHA-256", bytes));
  const describe = (data, record) => {
    if (typeof data === "string") {
      const bytes = new TextEncoder().encode(data);
      if (data.length <= 64) record.text = data;
      else pending.push(sha256(bytes).then((d) => { record.text = [bytes.length, d]; }));
    } else if (data instanceof Blob) {
      pending.push(data.arrayBuffer().then(sha256).then((d) => { record.blob = [data.size, d]; }));
    } else {
      pending.push(sha256(data).then((d) => { record.arraybuffer = [data.byteLength, d]; }));
    }
  };
  let ws;
  try {
    ws = sc.protocols === null ? new WebSocket(url) : new WebSocket(url, sc.protocols);
  } catch (e) {
    return [{ type: "exception", name: e.name }];
  }
  if (sc.binary_type !== null) ws.binaryType = sc.binary_type;
  log.push({ type: "created", url: ws.url, readyState: ws.readyState, binaryType: ws.binaryType });
  const act = (actions) => {
    for (const [name, ...args] of actions) {
      if (name === "send_text") ws.send(args[0]);
      else if (name === "send_text_of_size") ws.send(args[0].repeat(args[1]));
      else if (name === "send_bytes") {
        const bytes = new Uint8Array(args[0]);
        for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
        ws.send(bytes.buffer);
      } else if (name === "close") ws.close(...args);
      log.push({ action: name, readyState: ws.readyState, bufferedAmount: ws.bufferedAmount });
    }
  };
  let messages = 0;
  ws.onopen = () => {
    log.push({
      type: "open", readyState: ws.readyState, protocol: ws.protocol, extensions: ws.extensions,
    });
    act(sc.on_open);
  };
  ws.onmessage = (e) => {
    messages += 1;
    const record = { type: "message", readyState: ws.readyState, origin: e.origin };
    describe(e.data, record);
    log.push(record);
    act(sc.on_message[String(messages)] || []);
  };
  ws.onerror = () => log.push({ type: "error", readyState: ws.readyState });
  const closed = new Promise((resolve) => {
    ws.onclose = (e) => {
      log.push({
        type: "close", readyState: ws.readyState, code: e.code, reason: e.reason,
        wasClean: e.wasClean, bufferedAmount: ws.bufferedAmount,
      });
      resolve();
    };
  });
  act(sc.at_start);
  await closed;
  await new Promise((resolve) => setTimeout(resolve, afterCloseMs));
  await Promise.all(pending);
  return log;
}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(chromium_launch_options: dict[str, Any]) -> AsyncIterator[Browser | None]:
    """One Chromium for the module, or None when it is not installed (`browser` says so)."""
    if not os.path.exists(chromium_launch_options["executable_path"]):
        yield None
        return
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**chromium_launch_options)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def browser(
    require_tool: Callable[[str, str], str],
    chromium_launch_options: dict[str, Any],
    chromium: Browser | None,
) -> Browser:
    require_tool("chromium", chromium_launch_options["executable_path"])
    assert chromium is not None
    return chromium


async def run_chromium(browser: Browser, port: int, url: str, scenario: Scenario) -> Any:
    page = await browser.new_page()
    try:
        await page.goto(f"http://127.0.0.1:{port}/page")
        return await page.evaluate(RUN_IN_CHROMIUM, [url, asdict(scenario), AFTER_CLOSE_S * 1000])
    finally:
        await page.close()


# --- fullduplex --------------------------------------------------------------------------------


def pattern(size: int) -> bytes:
    """``size`` bytes ``i % 251``: what the JavaScript runner's ``send_bytes`` sends."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def describe(data: str | bytes | Blob, record: dict[str, Any]) -> None:
    """Record message data as the JavaScript runner does."""
    if isinstance(data, str):
        # JavaScript's length counts UTF-16 code units.
        if len(data.encode("utf-16-le")) // 2 <= 64:
            record["text"] = data
        else:
            encoded = data.encode()
            record["text"] = [len(encoded), hashlib.sha256(encoded).hexdigest()]
    elif isinstance(data, Blob):
        record["blob"] = [data.size, hashlib.sha256(bytes(data)).hexdigest()]
    else:
        record["arraybuffer"] = [len(data), hashlib.sha256(data).hexdigest()]


async def run_fullduplex(url: str, scenario: Scenario) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = []
    try:
        ws = WebSocket(url, scenario.protocols)
    except DOMException as exc:
        return [{"type": "exception", "name": exc.name}]
    if scenario.binary_type is not None:
        ws.binaryType = scenario.binary_type
    log.append(
        {"type": "created", "url": ws.url, "readyState": ws.readyState, "binaryType": ws.binaryType}
    )

    def act(actions: list[Action]) -> None:
        for name, *args in actions:
            if name == "send_text":
                ws.send(args[0])
            elif name == "send_text_of_size":
                ws.send(args[0] * args[1])
            elif name == "send_bytes":
                ws.send(pattern(args[0]))
            elif name == "close":
                ws.close(*args)
            log.append(
                {"action": name, "readyState": ws.readyState, "bufferedAmount": ws.bufferedAmount}
            )

    messages = 0

    def on_open(event: Event) -> None:
        log.append(
            {
                "type": "open",
                "readyState": ws.readyState,
                "protocol": ws.protocol,
                "extensions": ws.extensions,
            }
        )
        act(scenario.on_open)

    def on_message(event: MessageEvent) -> None:
        nonlocal messages
        messages += 1
        record = {"type": "message", "readyState": ws.readyState, "origin": event.origin}
        describe(event.data, record)
        log.append(record)
        act(scenario.on_message.get(str(messages), []))

    closed = asyncio.get_running_loop().create_future()

    def on_close(event: CloseEvent) -> None:
        log.append(
            {
                "type": "close",
                "readyState": ws.readyState,
                "code": event.code,
                "reason": event.reason,
                "wasClean": event.wasClean,
                "bufferedAmount": ws.bufferedAmount,
            }
        )
        closed.set_result(None)

    ws.onopen = on_open
    ws.onmessage = on_message
    ws.onerror = lambda event: log.append({"type": "error", "readyState": ws.readyState})
    ws.onclose = on_close
    act(scenario.at_start)
    await closed
    await asyncio.sleep(AFTER_CLOSE_S)
    return log


# --- the comparison ----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
async def test_fullduplex_websocket_records_what_chromium_records(
    scenario: Scenario, browser: Browser
) -> None:
    async with scripted_server() as ports:
        port = ports.mute_port if scenario.mute else ports.port
        url = f"{scenario.scheme}://127.0.0.1:{port}{scenario.path}"
        expected = await run_chromium(browser, ports.port, url, scenario)
        seen = await run_fullduplex(url, scenario)
    assert seen == expected
    # Each scenario dispatches what it is about: a close event, and no exception.
    assert expected[-1]["type"] == "close", expected


async def test_scenarios_cover_the_conversations_the_issue_names() -> None:
    names = {scenario.name for scenario in SCENARIOS}
    assert {
        "normal_close",
        "server_close_with_code_and_reason",
        "refused_handshake",
        "tcp_reset",
        "unsupported_subprotocol",
        "large_messages",
    } <= names
