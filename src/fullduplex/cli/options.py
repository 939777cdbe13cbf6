"""What the commands share: exit statuses, option types, client options, error reports, signals."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..exceptions import InvalidHandshake, InvalidRedirect, InvalidStatus, ProxyError
from ..io.asyncio import WebSocketURI, parse_uri
from ..io.options import DEFAULT_OPTIONS

__all__ = [
    "ExitStatus",
    "CommandError",
    "byte_size",
    "byte_count",
    "header",
    "seconds",
    "positive_int",
    "websocket_url",
    "add_message_options",
    "message_options",
    "add_client_options",
    "client_options",
    "trusting",
    "connect_failure",
    "StopSignals",
]


class ExitStatus(enum.IntEnum):
    """How a command ends; `fullduplex connect --help` documents them."""

    OK = 0
    FAILURE = 1  # connect, bench: closed abnormally; serve: could not listen
    USAGE = 2  # argparse's own status for bad arguments
    HANDSHAKE_FAILED = 3
    CONNECT_FAILED = 4
    TLS_ERROR = 5
    TIMEOUT = 6
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it


EXIT_STATUS_HELP = """\
exit status:
  0    the connection closed normally (1000, 1001, or no code), or -n replies arrived
  1    the connection closed with another code or without a closing handshake,
       or it closed before the -n replies arrived
  2    bad arguments, or a line of input that is not UTF-8
  3    the server refused the handshake (the HTTP status is on stderr) or botched it
  4    the connection could not be made (refused, unreachable, unknown host),
       or the proxy could not be reached or refused (its HTTP status is on stderr)
  5    TLS failed (untrusted certificate: try --cacert FILE, or --insecure)
  6    timed out (opening handshake, or waiting for the -n replies)
  130  interrupted (Ctrl-C or SIGTERM); the connection was closed with 1000 first
"""


class CommandError(Exception):
    """A failure reported as one line on stderr, ending the command with ``status``."""

    def __init__(self, status: ExitStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


_SIZE_SUFFIXES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def byte_size(text: str) -> int | None:
    """``argparse`` type: a size in bytes, with an optional K, M or G suffix (powers of 1024);
    ``none`` for no limit."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    if value == "none":
        return None
    number, suffix = (value[:-1], value[-1]) if value[-1:].isalpha() else (value, "")
    if suffix not in _SIZE_SUFFIXES or not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 65536, 64K, 1M)")
    return int(number) * _SIZE_SUFFIXES[suffix]


def byte_count(text: str) -> int:
    """``argparse`` type: a size in bytes, as `byte_size`, but never ``none``."""
    size = byte_size(text)
    if size is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 0, 512, 1K)")
    return size


def header(text: str) -> tuple[str, str]:
    """``argparse`` type: ``Name: value``."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a header; write it as 'Name: value'")
    return name, value.strip()


def seconds(text: str) -> float:
    """``argparse`` type: a non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def positive_int(text: str) -> int:
    """``argparse`` type: an integer of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def websocket_url(text: str) -> str:
    """``argparse`` type: a ``ws://`` or ``wss://`` URL; ``http(s)://`` and a bare
    ``host:port/path`` are taken to mean the WebSocket URL they point at."""
    if "://" not in text:
        text = "ws://" + text
    parts = urlsplit(text)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    url = urlunsplit(parts._replace(scheme=scheme))
    try:
        parse_uri(url)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return url


def add_message_options(group: argparse._ArgumentGroup, no_compression_help: str) -> None:
    """Add the options of every command about messages: --max-size, --no-compression (with
    the command's own help, as a client offers compression and a server accepts it) and
    --compression-threshold; `message_options` reads them."""
    group.add_argument(
        "--max-size",
        metavar="BYTES",
        type=byte_size,
        default=DEFAULT_OPTIONS.max_size,
        help="largest message accepted, e.g. 64K, 16M, none (default: 1M); "
        "a larger one closes the connection with 1009",
    )
    group.add_argument(
        "--no-compression", dest="compression", action="store_false", help=no_compression_help
    )
    group.add_argument(
        "--compression-threshold",
        metavar="BYTES",
        type=byte_count,
        default=DEFAULT_OPTIONS.compression_threshold,
        help="with permessage-deflate, send messages shorter than this uncompressed "
        "(default: 1K; 0 compresses every message)",
    )


def message_options(args: argparse.Namespace) -> dict[str, Any]:
    """The `Options` fields, also keyword arguments of `fullduplex.connect`, that
    `add_message_options` asked for."""
    return dict(
        max_size=args.max_size,
        compression="deflate" if args.compression else None,
        compression_threshold=args.compression_threshold,
    )


def add_client_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the options of every command that opens connections (handshake, TLS, limits);
    return their group, for a command to add its own."""
    group = parser.add_argument_group("connection options")
    group.add_argument(
        "-H",
        "--header",
        dest="headers",
        metavar="'NAME: VALUE'",
        type=header,
        action="append",
        default=[],
        help="add a header to the upgrade request (repeatable)",
    )
    group.add_argument(
        "--subprotocol",
        dest="subprotocols",
        metavar="NAME",
        action="append",
        default=[],
        help="offer a subprotocol, by preference (repeatable)",
    )
    group.add_argument("--origin", metavar="ORIGIN", help="send this Origin header")
    add_message_options(group, "do not offer permessage-deflate (offered by default)")
    group.add_argument(
        "--cacert",
        metavar="FILE",
        help="for wss://, trust the certificate authorities in this PEM file",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="for wss://, accept any certificate (no verification: testing only)",
    )
    return group


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `fullduplex.connect` that `add_client_options` asked for.

    Raises:
        CommandError: --cacert or --insecure with a ws:// URL, or an unreadable --cacert.
    """
    uri: WebSocketURI = parse_uri(args.url)
    tls: ssl.SSLContext | None = None
    if args.cacert is not None or args.insecure:
        if not uri.secure:
            raise CommandError(ExitStatus.USAGE, "--cacert and --insecure need a wss:// URL")
        tls = trusting("--cacert", args.cacert)
        if args.insecure:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    return dict(
        extra_headers=args.headers,
        subprotocols=args.subprotocols,
        origin=args.origin,
        ssl=tls,
        **message_options(args),
    )


def trusting(option: str, cafile: str | None) -> ssl.SSLContext:
    """A TLS client context that trusts the certificate authorities of ``cafile`` (the
    system's when None), which the command-line ``option`` named.

    Raises:
        CommandError: ``cafile`` cannot be read or holds no certificate.
    """
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(ExitStatus.USAGE, f"cannot load {option} {cafile}: {exc}") from None


def connect_failure(error: BaseException, url: str, open_timeout: float | None) -> CommandError:
    """Describe why `fullduplex.connect` failed, with the exit status that goes with it.

    Raises:
        BaseException: ``error`` itself when it is not a connection failure.
    """
    uri = parse_uri(url)
    where = f"{uri.host}:{uri.port}"
    # Order matters: SSLError and TimeoutError are OSErrors, InvalidStatus an InvalidHandshake,
    # InvalidRedirect an InvalidStatus.
    if isinstance(error, ProxyError):
        return CommandError(ExitStatus.CONNECT_FAILED, str(error))
    if isinstance(error, ImportError):  # a SOCKS proxy without the socks extra
        return CommandError(ExitStatus.USAGE, str(error))
    if isinstance(error, InvalidRedirect):
        return CommandError(ExitStatus.HANDSHAKE_FAILED, f"handshake failed: {error}")
    if isinstance(error, InvalidStatus):
        status = error.response.status
        reason = error.response.reason
        if not reason:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        return CommandError(
            ExitStatus.HANDSHAKE_FAILED, f"handshake refused: HTTP {status} {reason}".rstrip()
        )
    if isinstance(error, InvalidHandshake):
        return CommandError(ExitStatus.HANDSHAKE_FAILED, f"handshake failed: {error}")
    if isinstance(error, ssl.SSLCertVerificationError):
        return CommandError(
            ExitStatus.TLS_ERROR,
            f"TLS error: {error.verify_message} (trust its CA with --cacert FILE, "
            "or skip verification with --insecure)",
        )
    if isinstance(error, ssl.SSLError):
        return CommandError(ExitStatus.TLS_ERROR, f"TLS error with {where}: {error.reason}")
    if isinstance(error, TimeoutError):
        return CommandError(ExitStatus.TIMEOUT, f"timed out after {open_timeout:g} s opening {url}")
    if type(error) is ConnectionError:  # the core's: the server hung up mid-handshake
        return CommandError(ExitStatus.HANDSHAKE_FAILED, f"handshake failed: {error}")
    if isinstance(error, socket.gaierror):
        return CommandError(ExitStatus.CONNECT_FAILED, f"cannot resolve {uri.host}: {error}")
    if isinstance(error, OSError):
        detail = os.strerror(error.errno) if error.errno else str(error) or type(error).__name__
        detail = detail.lower()
        return CommandError(ExitStatus.CONNECT_FAILED, f"cannot connect to {where}: {detail}")
    raise error


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM, handled by the event loop.

    The first one calls ``on_stop``, which starts a graceful stop, and arms a watchdog: if the
    process is still there ``deadline_s`` later (a handler that ignores cancellation, code
    that blocks the event loop), it exits anyway, with status 130. So does a second signal.
    Use as a context manager around the part of the command that may be stopped.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_stop: Callable[[], object], deadline_s: float) -> None:
        self.on_stop = on_stop
        self.deadline_s = deadline_s
        self.received: signal.Signals | None = None

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        # Where the loop cannot handle signals (Windows), Ctrl-C raises KeyboardInterrupt,
        # which `main` turns into status 130.
        with contextlib.suppress(NotImplementedError):
            for signum in self.SIGNALS:
                loop.add_signal_handler(signum, self._handle, signum)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            for signum in self.SIGNALS:
                loop.remove_signal_handler(signum)

    def _handle(self, signum: signal.Signals) -> None:
        if self.received is not None:
            _force_exit("stopped at once, on a second signal")
        self.received = signum
        watchdog = threading.Timer(
            self.deadline_s, _force_exit, [f"still stopping after {self.deadline_s:g} s; exiting"]
        )
        watchdog.daemon = True
        watchdog.start()
        self.on_stop()


def _force_exit(message: str) -> None:
    # os._exit: neither a stuck task nor a blocked event loop can delay it.
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        print(f"fullduplex: {message}", file=sys.stderr, flush=True)
    os._exit(ExitStatus.INTERRUPTED)
