"""``fullduplex connect URL``: talk to a WebSocket server, from a terminal or from a script.

With a terminal on stdin and stdout, the command is interactive: a line editor sends each line
typed, slash-commands ping and close, and messages print above the line being typed. Otherwise
(or with -n), it is a filter: each line of stdin is one text message, each message received is
one line of stdout, and nothing else is written there.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime
from typing import Any, Literal

from ..exceptions import ConnectionClosed, ConnectionClosedOK
from ..io.asyncio import ClientConnection, Message, connect
from ..io.asyncio.proxy import parse_proxy_url
from ..protocol.frames import CloseCode
from .options import (
    EXIT_STATUS_HELP,
    CommandError,
    ExitStatus,
    StopSignals,
    add_client_options,
    client_options,
    connect_failure,
    positive_int,
    seconds,
    trusting,
    websocket_url,
)
from .terminal import LineEditor, Style, line_editor

__all__ = ["add_parser", "run"]

DEFAULT_OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 3.0
"""How long to wait for the server's part of the closing handshake before hanging up."""

DESCRIPTION = """\
Open a WebSocket connection to URL and exchange messages.

interactive mode (stdin and stdout are a terminal, and no -n):
  type a line and press Enter to send it as a text message; messages received print
  above the line being typed ('<' text, '< [binary]' binary). Up/down arrows recall
  earlier lines. Commands:
    /ping [DATA]             send a ping, print the round-trip time when the pong arrives
    /close [CODE [REASON]]   close with CODE (default 1000) and REASON, then exit
    /binary HEX              send a binary message (hex digits, spaces allowed)
    /quit                    close with 1000 and exit (so do Ctrl-D and Ctrl-C)
    /help                    list these commands
  A line starting with // sends the text after the first slash.

scripted mode (stdin or stdout is not a terminal, or -n / --once):
  each line of stdin (without its \\n) is sent as one text message; each message
  received is written to stdout as one line: text as is (UTF-8), binary in hex or
  base64 (--binary-as). Nothing else goes to stdout; errors go to stderr. At the end
  of stdin, the messages that still arrive are printed until none has for --linger
  seconds, then the connection is closed with 1000. With -n N, the command exits as
  soon as N messages have arrived, whatever stdin does.
"""

EPILOG = f"""\
examples:
  fullduplex connect ws://127.0.0.1:8000/            interactive session
  echo '{{"op": "status"}}' | fullduplex connect ws://127.0.0.1:8000/ --once --json
  fullduplex connect wss://example.test/feed -n 10 --timeout 30 < /dev/null
  fullduplex connect wss://127.0.0.1:8443/ --cacert ca.pem -H 'Authorization: Bearer T'
  fullduplex connect wss://example.test/feed --proxy http://user:secret@proxy.test:3128

{EXIT_STATUS_HELP}"""

COMMANDS = ("/ping", "/close", "/binary", "/quit", "/help")
HELP_TEXT = """\
/ping [DATA]            send a ping; prints the round-trip time
/close [CODE [REASON]]  close the connection (1000 by default) and exit
/binary HEX             send a binary message, e.g. /binary 00ff 10
/quit                   close with 1000 and exit (also Ctrl-D, Ctrl-C)
//text                  send "/text"\
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "connect",
        help="talk to a WebSocket server (interactive, or one line per message)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url",
        metavar="URL",
        type=websocket_url,
        help="ws:// or wss:// URL (http:// and https:// are read as ws:// and wss://)",
    )
    script = parser.add_argument_group("scripted mode")
    count = script.add_mutually_exclusive_group()
    count.add_argument(
        "-n",
        "--count",
        metavar="N",
        type=positive_int,
        help="exit (closing with 1000) once N messages have arrived",
    )
    count.add_argument("--once", dest="count", action="store_const", const=1, help="same as -n 1")
    script.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds,
        help=f"give up (exit 6) when the opening handshake takes longer "
        f"(default: {DEFAULT_OPEN_TIMEOUT_S:g}), or, with -n, when the N messages take longer "
        "(default: no limit)",
    )
    script.add_argument(
        "--linger",
        metavar="SECONDS",
        type=seconds,
        default=1.0,
        help="after the end of stdin, wait until no message has arrived for this long before "
        "closing (default: 1); 'inf' waits for the server to close",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--binary-as",
        choices=("hex", "base64"),
        default="hex",
        help="how binary messages are written (default: hex)",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="pretty-print text messages that are JSON (indented; others unchanged)",
    )
    output.add_argument(
        "--timestamps",
        action="store_true",
        help="prefix each message received with the time it arrived (ISO 8601, local time)",
    )
    connection = add_client_options(parser)
    proxy = connection.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        type=proxy_url,
        help="go through this proxy: http://[USER:PASSWORD@]HOST:PORT (CONNECT), https://... "
        "(CONNECT over TLS to the proxy), socks5://, socks5h:// (the proxy resolves names), "
        "socks4:// (SOCKS needs: pip install 'fullduplex[socks]'); default: from the "
        "environment (https_proxy for wss://, http_proxy for ws://, all_proxy, no_proxy)",
    )
    proxy.add_argument(
        "--no-proxy",
        action="store_true",
        help="connect directly, whatever the environment's proxy variables say",
    )
    connection.add_argument(
        "--proxy-cacert",
        metavar="FILE",
        help="for an https:// proxy, trust the certificate authorities in this PEM file",
    )
    connection.add_argument(
        "--ping-interval",
        metavar="SECONDS",
        type=seconds,
        default=20.0,
        help="send a keepalive ping this often, closing with 1011 if no pong comes within "
        "as long again; 0 disables (default: 20)",
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    return await _Connect(args).run()


class _Connect:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.interactive = args.count is None and sys.stdin.isatty() and sys.stdout.isatty()
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[object] | None = None
        self.stopping: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> int:
        self.task = asyncio.current_task()
        assert self.task is not None
        with StopSignals(self._interrupt, CLOSE_TIMEOUT_S + 2) as signals:
            try:
                return await self._run()
            except asyncio.CancelledError:
                if signals.received is None:
                    raise
                return ExitStatus.INTERRUPTED

    def _interrupt(self) -> None:
        if self.ws is None:  # still opening: give up at once
            assert self.task is not None
            self.task.cancel()
        elif not self.stopping.done():
            self.stopping.set_result(None)

    async def _run(self) -> int:
        args = self.args
        options = client_options(args)
        open_timeout = args.timeout if args.timeout is not None else DEFAULT_OPEN_TIMEOUT_S
        proxy: str | Literal[True] | None = True  # from the environment
        if args.proxy is not None:
            proxy = args.proxy
        elif args.no_proxy:
            proxy = None
        proxy_ssl = None
        if args.proxy_cacert is not None:
            proxy_ssl = trusting("--proxy-cacert", args.proxy_cacert)
        try:
            self.ws = await connect(
                args.url,
                proxy=proxy,
                proxy_ssl=proxy_ssl,
                open_timeout=open_timeout,
                close_timeout=CLOSE_TIMEOUT_S,
                ping_interval=args.ping_interval or None,
                ping_timeout=args.ping_interval or None,
                **options,
            )
        except Exception as exc:
            raise connect_failure(exc, args.url, open_timeout) from None
        if self.interactive:
            return await _Interactive(self.ws, args, self.stopping).run()
        return await _Scripted(self.ws, args, self.stopping).run()


def proxy_url(text: str) -> str:
    """``argparse`` type: a proxy URL that `fullduplex.connect` accepts."""
    try:
        parse_proxy_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# --- rendering ---------------------------------------------------------------------------


def render(message: Message, args: argparse.Namespace) -> str:
    """A received message as text: JSON pretty-printed with --json, binary encoded."""
    if isinstance(message, str):
        if args.json:
            try:
                return json.dumps(json.loads(message), indent=2, ensure_ascii=False)
            except ValueError:
                pass
        return message
    if args.binary_as == "base64":
        return base64.b64encode(message).decode()
    return message.hex()


def describe_close(ws: ClientConnection) -> str:
    """How the connection ended, for a person: ``closed with 1011 (internal error) 'oops'``."""
    failure = ws.protocol.failure
    if failure is not None:
        return f"connection failed: {failure} ({failure_code(failure)})"
    code = ws.close_code
    if code == CloseCode.ABNORMAL_CLOSURE:
        return "connection lost without a closing handshake (1006)"
    if code is None or code == CloseCode.NO_STATUS_RCVD:
        return "closed without a code (1005)"
    try:
        name = f" ({CloseCode(code).name.lower().replace('_', ' ')})"
    except ValueError:
        name = ""
    reason = f" {ws.close_reason!r}" if ws.close_reason else ""
    return f"closed with {code}{name}{reason}"


def failure_code(failure: Exception) -> int:
    code: int = getattr(failure, "close_code", CloseCode.PROTOCOL_ERROR)
    return code


def closed_normally(ws: ClientConnection) -> bool:
    """Whether the closing handshake completed with 1000, 1001 or no code, and this side did
    not fail the connection (a message over --max-size, a protocol error, no pong)."""
    return ws.protocol.failure is None and isinstance(
        ws.protocol.closed_error(), ConnectionClosedOK
    )


# --- scripted mode -----------------------------------------------------------------------


class _Scripted:
    """stdin lines out, messages in as stdout lines."""

    def __init__(
        self, ws: ClientConnection, args: argparse.Namespace, stopping: asyncio.Future[None]
    ) -> None:
        self.ws = ws
        self.args = args
        self.stopping = stopping
        self.expected: int | None = args.count
        self.received = 0
        self.loop = asyncio.get_running_loop()
        self.last_message_at = self.loop.time()

    async def run(self) -> int:
        ws, args = self.ws, self.args
        sender = asyncio.create_task(self._send_stdin())
        receiver = asyncio.create_task(self._receive())
        reply_timeout = args.timeout if self.expected is not None else None
        try:
            async with asyncio.timeout(reply_timeout):
                await self._until_done(receiver, sender)
        except TimeoutError:
            await ws.close()
            raise CommandError(
                ExitStatus.TIMEOUT,
                f"timed out after {args.timeout:g} s waiting for {self.expected} messages "
                f"({self.received} arrived)",
            ) from None
        except BaseException:
            await ws.close()
            raise
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.gather(sender, receiver, return_exceptions=True)
        await ws.close()
        if self.stopping.done():
            return ExitStatus.INTERRUPTED
        if self.expected is not None and self.received >= self.expected:
            return ExitStatus.OK
        if self.expected is not None:
            raise CommandError(
                ExitStatus.FAILURE,
                f"{describe_close(ws)} after {self.received} of {self.expected} messages",
            )
        if closed_normally(ws):
            return ExitStatus.OK
        raise CommandError(ExitStatus.FAILURE, describe_close(ws))

    async def _until_done(self, receiver: asyncio.Task[None], sender: asyncio.Task[None]) -> None:
        """Wait until the receiver is done (closed, or -n reached) or a signal came; the
        sender's end is no reason to stop, its failure is."""
        pending: set[asyncio.Future[None]] = {receiver, sender, self.stopping}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                sender.result()
            if receiver in done or self.stopping in done:
                return

    async def _receive(self) -> None:
        out = sys.stdout.buffer
        args = self.args
        while self.expected is None or self.received < self.expected:
            try:
                message = await self.ws.recv()
            except ConnectionClosed:
                return
            self.last_message_at = self.loop.time()
            self.received += 1
            line = render(message, args)
            if args.timestamps:
                line = f"{datetime.now().astimezone().isoformat(timespec='milliseconds')} {line}"
            try:
                out.write(line.encode() + b"\n")
                out.flush()
            except BrokenPipeError:
                # The reader left (`| head -1`): nobody wants more; leave quietly.
                _silence_stdout()
                self.expected = self.received
                return

    async def _send_stdin(self) -> None:
        number = 0
        async for line in _stdin_lines():
            number += 1
            try:
                text = line.decode()
            except UnicodeDecodeError:
                raise CommandError(
                    ExitStatus.USAGE, f"line {number} of the input is not UTF-8 text"
                ) from None
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                return
        if self.expected is not None:
            return
        linger = self.args.linger
        if linger == float("inf"):
            return
        self.last_message_at = self.loop.time()
        while (quiet := self.loop.time() - self.last_message_at) < linger:
            await asyncio.sleep(linger - quiet)
        await self.ws.close()


async def _stdin_lines() -> AsyncIterator[bytes]:
    """The lines of stdin, without their b"\\n"; a last line without one counts too.

    A thread reads (stdin may be a regular file, which the event loop cannot watch), at most
    a few chunks ahead of the sender.
    """
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)

    def read() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read can make the
        # interpreter abort at exit, when it tries to take the buffer's lock.
        while True:
            try:
                chunk = os.read(0, 65536)
            except OSError:
                chunk = b""
            put = chunks.put(chunk)
            try:
                asyncio.run_coroutine_threadsafe(put, loop).result()
            except Exception:
                # The loop is gone (the command ended before stdin did): nobody to tell. The
                # coroutine never ran; close it, or Python warns that it was never awaited.
                put.close()
                return
            if not chunk:
                return

    threading.Thread(target=read, name="fullduplex-stdin", daemon=True).start()
    pending = b""
    while chunk := await chunks.get():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line
    if pending:
        yield pending


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so that the exit flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


# --- interactive mode --------------------------------------------------------------------


class _Interactive:
    """A terminal session: lines typed are sent, messages are printed above the prompt."""

    def __init__(
        self, ws: ClientConnection, args: argparse.Namespace, stopping: asyncio.Future[None]
    ) -> None:
        self.ws = ws
        self.args = args
        self.stopping = stopping
        self.style = Style.for_terminal()
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.editor: LineEditor = line_editor(
            self.style.prompt("> "), self.lines.put_nowait, COMMANDS
        )
        self.tasks: set[asyncio.Task[None]] = set()

    def say(self, text: str) -> None:
        self.editor.print_above(self.style.info(f"* {text}"))

    def warn(self, text: str) -> None:
        self.editor.print_above(self.style.error(f"! {text}"))

    async def run(self) -> int:
        ws = self.ws
        extensions = ", ".join(extension.name for extension in ws.protocol.extensions)
        details = [f"subprotocol {ws.subprotocol}"] if ws.subprotocol else []
        details += [extensions] if extensions else []
        suffix = f" ({'; '.join(details)})" if details else ""
        print(self.style.info(f"* connected to {self.args.url}{suffix}"))
        print(self.style.info("* type a message and press Enter; /help lists the commands"))
        self.editor.start()
        receiver = asyncio.create_task(self._receive())
        try:
            await self._read_lines(receiver)
            await ws.close()
            await receiver
        finally:
            for task in (receiver, *self.tasks):
                task.cancel()
            await asyncio.gather(receiver, *self.tasks, return_exceptions=True)
            self.editor.stop()
        if self.stopping.done():
            return ExitStatus.INTERRUPTED
        return ExitStatus.OK if closed_normally(ws) else ExitStatus.FAILURE

    async def _read_lines(self, receiver: asyncio.Task[None]) -> None:
        while True:
            next_line: asyncio.Future[str | None] = asyncio.ensure_future(self.lines.get())
            waiting: set[asyncio.Future[Any]] = {next_line, receiver, self.stopping}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if next_line not in done:
                next_line.cancel()
                return
            line = next_line.result()
            if line is None:  # Ctrl-D
                return
            if await self._handle(line):
                return

    async def _handle(self, line: str) -> bool:
        """Send ``line`` or run its command; True when the session should end."""
        if not line:
            return False
        if not line.startswith("/") or line.startswith("//"):
            await self._send(line[1:] if line.startswith("//") else line)
            return False
        command, _, rest = line.partition(" ")
        if command == "/quit":
            return True
        if command == "/help":
            for help_line in HELP_TEXT.splitlines():
                self.say(help_line)
        elif command == "/ping":
            self._spawn(self._ping(rest or None))
        elif command == "/binary":
            try:
                data = bytes.fromhex(rest)
            except ValueError:
                self.warn("/binary wants hex digits, e.g. /binary 68 69")
            else:
                await self._send(data)
        elif command == "/close":
            code_text, _, reason = rest.partition(" ")
            if code_text and not code_text.isdigit():
                self.warn("/close wants a numeric code, e.g. /close 1000 bye")
                return False
            try:
                await self.ws.close(int(code_text or CloseCode.NORMAL_CLOSURE), reason)
            except ValueError as exc:
                self.warn(str(exc))
                return False
            return True
        else:
            self.warn(f"unknown command {command}; /help lists them (// sends a leading /)")
        return False

    async def _send(self, message: str | bytes) -> None:
        try:
            await self.ws.send(message)
        except ConnectionClosed as exc:
            self.warn(f"not sent: {exc}")

    async def _ping(self, data: str | None) -> None:
        try:
            rtt = await self.ws.ping(data)
        except (ValueError, ConnectionClosed) as exc:
            self.warn(f"ping failed: {exc}")
        else:
            self.say(f"pong in {rtt * 1000:.2f} ms")

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _receive(self) -> None:
        ws, args, style = self.ws, self.args, self.style
        while True:
            try:
                message = await ws.recv()
            except ConnectionClosed:
                break
            text = render(message, args)
            label = "< " if isinstance(message, str) else f"< [binary {len(message)} B] "
            if args.timestamps:
                label = f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} {label}"
            lines = text.split("\n")
            indented = "\n".join([lines[0], *(" " * len(label) + rest for rest in lines[1:])])
            self.editor.print_above(style.incoming(label) + indented)
        await ws.wait_closed()
        if closed_normally(ws):
            self.say(describe_close(ws))
        else:
            self.warn(describe_close(ws))
