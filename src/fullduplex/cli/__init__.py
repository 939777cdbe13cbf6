"""The ``fullduplex`` command: ``connect``, ``serve`` and ``bench``.

``main`` parses the arguments and runs the chosen command on an event loop (uvloop when it
is installed, see `fullduplex.run`). A command reports a failure by raising `CommandError`:
one line on stderr, and its exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence

from ..io.asyncio import run
from . import bench, connect, serve
from .options import CommandError, ExitStatus

__all__ = ["main", "build_parser"]

DESCRIPTION = """\
fullduplex: a WebSocket client, server and load tester.

commands:
  connect URL   talk to a WebSocket server: interactive in a terminal, one line per
                message in a pipe
  serve         run a server: --echo, --broadcast or --app module:callable, plus
                --static files on the same port
  bench URL     load an echo endpoint; print msgs/s and latency percentiles

`fullduplex COMMAND --help` describes each command, its options and exit statuses.
"""


def build_parser() -> argparse.ArgumentParser:
    from .. import __name__ as package

    parser = argparse.ArgumentParser(
        prog="fullduplex",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version(package)}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in (connect, serve, bench):
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fullduplex`` command line; return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE
    command: Callable[[argparse.Namespace], Awaitable[int]] = args.run
    try:
        return run(_run(command, args))
    except CommandError as exc:
        print(f"fullduplex {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:  # before the command's own signal handling was in place
        return ExitStatus.INTERRUPTED


async def _run(
    command: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    return await command(args)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"
