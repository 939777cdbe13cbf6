"""``fullduplex serve``: a WebSocket server from the command line.

It runs one of three handlers (echo, broadcast, or an application's own ``module:callable``),
optionally serves a directory over plain HTTP on the same port, logs a line per connection,
and stops on Ctrl-C or SIGTERM by closing every connection with 1001 (going away).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import mimetypes
import os
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..exceptions import ConnectionClosed
from ..io.asyncio import Handler, Message, RequestHook, Server, ServerConnection, serve
from ..io.options import Options
from ..protocol import Request, Response
from ..protocol.frames import CloseCode
from .options import (
    CommandError,
    ExitStatus,
    StopSignals,
    add_message_options,
    message_options,
)

__all__ = ["add_parser", "run", "static_files", "load_app"]

logger = logging.getLogger("fullduplex.serve")

CLOSE_TIMEOUT_S = 3.0
"""Bounds each closing handshake, and each of the two waits of a shutdown (for handlers to
return, then for those cancelled to end)."""
STOP_DEADLINE_S = 2 * CLOSE_TIMEOUT_S + 1
"""After Ctrl-C, the process exits within this long, whatever its handlers do."""

EPILOG = """\
examples:
  fullduplex serve --echo
  fullduplex serve --broadcast --port 9000 --static ./public
  fullduplex serve --app chat:handler --subprotocol chat.v1 --origins https://app.example
  fullduplex serve --echo --host 0.0.0.0 --port 8443 --tls-cert cert.pem --tls-key key.pem

--app names an async function taking one argument, the connection (fullduplex.
ServerConnection): `async def handler(ws): async for message in ws: ...`. The current
directory is searched first for its module.

Each connection is logged on stderr when it ends: peer, path, subprotocol, close code
(the client's; 1006 if it vanished) and duration. HTTP requests that --static answers are
logged with their status.

Ctrl-C or SIGTERM closes every connection with 1001 and waits for the handlers to return,
7 s at most; a second Ctrl-C exits at once.

exit status:
  0    stopped by Ctrl-C or SIGTERM (every connection was closed with 1001)
  1    could not listen (address in use, permission denied)
  2    bad arguments (including an --app that does not import, unreadable TLS files)
  130  stopped by a second signal, or by the 7 s limit (handlers that would not end)
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a WebSocket server: echo, broadcast or your handler, plus static files",
        description="Run a WebSocket server until Ctrl-C or SIGTERM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    handlers = parser.add_argument_group("handler (one of; default --echo)")
    choice = handlers.add_mutually_exclusive_group()
    choice.add_argument(
        "--echo",
        dest="mode",
        action="store_const",
        const="echo",
        help="send each message back to its sender, text as text, binary as binary",
    )
    choice.add_argument(
        "--broadcast",
        dest="mode",
        action="store_const",
        const="broadcast",
        help="send each message to every connected client, the sender included",
    )
    choice.add_argument(
        "--app",
        metavar="MODULE:CALLABLE",
        help="run this handler for each connection, e.g. myapp.ws:handler",
    )
    parser.add_argument(
        "--static",
        metavar="DIR",
        type=Path,
        help="answer plain HTTP GET and HEAD requests with the files of DIR on the same port "
        "(index.html for directories)",
    )
    network = parser.add_argument_group("listening")
    network.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    network.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to listen on; 0 picks a free one (default: 8000)",
    )
    network.add_argument("--tls-cert", metavar="FILE", help="serve wss:// with this PEM chain")
    network.add_argument(
        "--tls-key", metavar="FILE", help="the private key of --tls-cert, if in its own file"
    )
    policy = parser.add_argument_group("connections")
    policy.add_argument(
        "--origins",
        metavar="ORIGIN[,ORIGIN...]",
        action="append",
        help="allow only these Origin headers (repeatable, or comma-separated); others get "
        "403. Clients sending no Origin (non-browsers) are allowed. Default: any origin",
    )
    policy.add_argument(
        "--subprotocol",
        dest="subprotocols",
        metavar="NAME",
        action="append",
        help="support this subprotocol, by preference (repeatable)",
    )
    add_message_options(policy, "refuse permessage-deflate (accepted by default)")
    parser.set_defaults(run=run, mode="echo")


async def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    app: Handler = load_app(args.app) if args.app else _HANDLERS[args.mode]()
    tls = _server_tls(args)
    origins: list[str | None] | None = None
    if args.origins:
        origins = [None]
        origins += [origin.strip() for value in args.origins for origin in value.split(",")]
    hook = static_files(args.static) if args.static is not None else None
    try:
        server = await serve(
            _logged(app),
            args.host,
            args.port,
            ssl=tls,
            origins=origins,
            subprotocols=args.subprotocols,
            process_request=hook,
            options=Options(close_timeout=CLOSE_TIMEOUT_S, **message_options(args)),
        )
    except OSError as exc:
        detail = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        raise CommandError(
            ExitStatus.FAILURE, f"cannot listen on {args.host}:{args.port}: {detail}"
        ) from None
    stop = asyncio.Event()
    with StopSignals(stop.set, STOP_DEADLINE_S):
        _announce(args, server, app_name=args.app or args.mode)
        await stop.wait()
        logger.info("stopping: closing %d connections with 1001", len(server.connections))
        server.close(CloseCode.GOING_AWAY)
        await server.wait_closed()
    return ExitStatus.OK


def _announce(args: argparse.Namespace, server: Server, app_name: str) -> None:
    secure = args.tls_cert is not None
    host = f"[{args.host}]" if ":" in args.host else args.host
    address = f"{host}:{server.port}"
    line = f"fullduplex serve: {app_name} on {'wss' if secure else 'ws'}://{address}/"
    if args.static is not None:
        line += f", files of {args.static} on {'https' if secure else 'http'}://{address}/"
    print(f"{line} (Ctrl-C stops)", file=sys.stderr, flush=True)


def _server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None:
        if args.tls_key is not None:
            raise CommandError(ExitStatus.USAGE, "--tls-key needs --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(ExitStatus.USAGE, f"cannot load the TLS certificate: {exc}") from None
    return context


# --- handlers ----------------------------------------------------------------------------


def _echo() -> Handler:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    return echo


def _broadcast() -> Handler:
    clients: set[ServerConnection] = set()

    async def deliver(client: ServerConnection, message: Message) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.send(message)

    async def broadcast(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            async for message in ws:
                # Concurrently: a slow client delays this sender's next message, not the others.
                await asyncio.gather(*(deliver(client, message) for client in list(clients)))
        finally:
            clients.discard(ws)

    return broadcast


_HANDLERS: dict[str, Callable[[], Handler]] = {"echo": _echo, "broadcast": _broadcast}


def load_app(spec: str) -> Handler:
    """Import ``module:callable`` (the current directory first) and return the callable.

    Raises:
        CommandError: the spec is malformed, or the module or callable cannot be found.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CommandError(ExitStatus.USAGE, f"--app {spec!r}: write it as module:callable")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise CommandError(
            ExitStatus.USAGE, f"--app {spec!r}: cannot import {module_name}: {exc!r}"
        ) from None
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise CommandError(
                ExitStatus.USAGE, f"--app {spec!r}: {module_name} has no {attribute}"
            ) from None
    if not callable(target):
        raise CommandError(ExitStatus.USAGE, f"--app {spec!r}: {attribute} is not callable")
    handler: Handler = target
    return handler


def _logged(app: Handler) -> Handler:
    """Wrap ``app`` to log a line when its connection ends."""

    async def handler(ws: ServerConnection) -> None:
        started = asyncio.get_running_loop().time()
        try:
            await app(ws)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("%s: the handler failed", _peer(ws))
            await ws.close(CloseCode.INTERNAL_ERROR)
        except asyncio.CancelledError:  # the server gave up on this handler at shutdown
            _log_connection(ws, started)
            raise
        # The connection would close when the handler returns; close it here to log its code.
        await ws.close()
        _log_connection(ws, started)

    return handler


def _log_connection(ws: ServerConnection, started: float) -> None:
    logger.info(
        "%s %s subprotocol=%s code=%s duration=%.2fs",
        _peer(ws),
        ws.request.path,
        ws.subprotocol or "-",
        ws.close_code or "-",
        asyncio.get_running_loop().time() - started,
    )


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return str(address)


# --- static files ------------------------------------------------------------------------


def static_files(root: Path) -> RequestHook:
    """A `process_request` hook answering plain HTTP requests with the files under ``root``;
    upgrade requests go on to the WebSocket handshake.

    Raises:
        CommandError: ``root`` is not a directory.
    """
    if not root.is_dir():
        raise CommandError(ExitStatus.USAGE, f"--static {root}: not a directory")
    base = root.resolve()

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if "websocket" in (request.headers.get("Upgrade") or "").lower():
            return None
        response = await asyncio.to_thread(_file_response, base, request)
        logger.info("%s %s %s %d", _peer(connection), request.method, request.path, response.status)
        return response

    hook: Callable[[ServerConnection, Request], Awaitable[Response | None]] = process_request
    return hook


def _file_response(base: Path, request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        return _text_response(405, "Method Not Allowed", [("Allow", "GET, HEAD")])
    relative = unquote(urlsplit(request.path).path).lstrip("/")
    path = (base / relative).resolve()
    # No escape from the root: not by "..", not by a symbolic link.
    if not path.is_relative_to(base):
        return _text_response(404, "Not Found")
    if path.is_dir():
        if not request.path.split("?")[0].endswith("/"):
            return Response(301, [("Location", urlsplit(request.path).path + "/")])
        path = path / "index.html"
    try:
        body = path.read_bytes()
    except OSError:
        return _text_response(404, "Not Found")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript",):
        content_type += "; charset=utf-8"
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-cache"),
    ]
    return Response(200, headers, b"" if request.method == "HEAD" else body)


def _text_response(
    status: int, text: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = f"{status} {text}\n".encode()
    return Response(status, [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])], body)
