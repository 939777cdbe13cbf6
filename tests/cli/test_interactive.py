"""`fullduplex connect` in interactive mode, driven through a pseudo-terminal: what the user
types is sent, messages print above the line being typed, and that line survives them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from .support import Peer, Terminal, fullduplex_server

PROMPT = rb"> "
ENTER = b"\r"
UP = b"\x1b[A"
LEFT = b"\x1b[D"
# Colors, and readline's own control sequences (bracketed paste, cursor moves), vary with
# the terminal; `plain` removes them to compare the text.
ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x01|\x02")


def plain(output: bytes) -> str:
    return ESCAPES.sub(b"", output).decode(errors="replace").replace("\r", "")


async def test_interactive_prints_messages_above_the_line_being_typed() -> None:
    push_requested = asyncio.Event()
    push_now = asyncio.Event()

    async def echo_and_push_on_request(ws: Any, peer: Peer) -> None:
        """Echo; on ``push``, say something unprompted when the test says so."""
        async for message in ws:
            peer.received.append(message)
            if message == "push":
                push_requested.set()
                await push_now.wait()  # while the user is typing
                await ws.send("order #1042 shipped")
            else:
                await ws.send(message)

    async with (
        fullduplex_server(echo_and_push_on_request) as peer,
        Terminal("connect", peer.url) as terminal,
    ):
        at = await terminal.expect(b"connected to " + peer.url.encode())
        at = await terminal.expect(PROMPT, after=at)
        terminal.type(b"hello" + ENTER)
        at = await terminal.expect(rb"< \x1b\[0mhello|< hello", after=at)
        terminal.type(b"push" + ENTER)
        await push_requested.wait()  # "push" went out: what is typed now is a new line
        terminal.type(b"half-typ")  # not sent yet: the push arrives now
        at = await terminal.expect(b"half-typ", after=at)
        push_now.set()
        pushed = await terminal.expect(b"order #1042 shipped", after=at)
        # The line being typed is drawn again below the message, as it was.
        await terminal.expect(rb"\r\n(?:\x1b\[1m)?> (?:\x1b\[0m)?half-typ", after=pushed)
        terminal.type(b"ed" + ENTER + b"\x04")  # finish the line, then Ctrl-D
        assert await terminal.exit_status() == 0
        await peer.closed.wait()
    assert peer.received == ["hello", "push", "half-typed"]
    assert peer.closes == [(1000, "")]
    screen = plain(terminal.output)
    assert "< order #1042 shipped\n> half-typ" in screen, screen
    assert "* closed with 1000 (normal closure)" in screen


async def test_interactive_edits_lines_and_recalls_history() -> None:
    async with fullduplex_server() as peer, Terminal("connect", peer.url) as terminal:
        await terminal.expect(PROMPT)
        terminal.type(b"first" + ENTER)
        at = await terminal.expect(b"< .*first")
        terminal.type(b"scond" + LEFT * 4 + b"e" + ENTER)  # cursor back, insert a letter
        at = await terminal.expect(b"< .*second", after=at)
        terminal.type(UP + UP + ENTER)  # the line before the last one
        await terminal.expect(b"< .*first", after=at)
        terminal.type(b"/quit" + ENTER)
        assert await terminal.exit_status() == 0
    assert peer.received == ["first", "second", "first"]


async def test_interactive_commands_ping_send_binary_and_close() -> None:
    async with fullduplex_server() as peer, Terminal("connect", peer.url) as terminal:
        await terminal.expect(PROMPT)
        terminal.type(b"/help" + ENTER)
        at = await terminal.expect(rb"/close \[CODE \[REASON\]\]")
        terminal.type(b"/ping hello" + ENTER)
        at = await terminal.expect(rb"pong in \d+\.\d\d ms", after=at)
        terminal.type(b"/binary 68 69 ff" + ENTER)
        at = await terminal.expect(rb"\[binary 3 B\] .*6869ff", after=at)
        terminal.type(b"//slash" + ENTER)
        at = await terminal.expect(b"< .*/slash", after=at)
        terminal.type(b"/nonsense" + ENTER)
        at = await terminal.expect(b"unknown command /nonsense", after=at)
        terminal.type(b"/close 4001 see you" + ENTER)
        assert await terminal.exit_status() == 1  # closed with a code other than 1000/1001
        await peer.closed.wait()
    assert peer.received == [b"hi\xff", "/slash"]
    assert peer.closes == [(4001, "see you")]
    assert "! closed with 4001" in plain(terminal.output)


async def test_interactive_ctrl_c_closes_with_1000_and_exits_130() -> None:
    async with fullduplex_server() as peer, Terminal("connect", peer.url) as terminal:
        await terminal.expect(PROMPT)
        terminal.type(b"never sent")
        await terminal.expect(b"never sent")
        terminal.interrupt()
        assert await terminal.exit_status() == 130
        await peer.closed.wait()
    assert peer.received == []
    assert peer.closes == [(1000, "")]


async def test_interactive_reports_the_server_closing_and_restores_the_terminal() -> None:
    async def close_on_request(ws: Any, peer: Peer) -> None:
        await ws.recv()
        await ws.close(1001, "restarting")

    async with (
        fullduplex_server(close_on_request) as peer,
        Terminal(
            "connect",
            peer.url,
            python_code=(
                # Run the command, then show whether the terminal echoes again (ECHO | ICANON).
                "import sys, termios\n"
                "from fullduplex.cli import main\n"
                "status = main(sys.argv[1:])\n"
                "lflag = termios.tcgetattr(0)[3]\n"
                "print('restored' if lflag & termios.ECHO and lflag & termios.ICANON else 'raw')\n"
                "sys.exit(status)\n"
            ),
        ) as terminal,
    ):
        await terminal.expect(PROMPT)
        terminal.type(b"bye" + ENTER)
        assert await terminal.exit_status() == 0
        await terminal.expect(b"restored")
    assert "* closed with 1001 (going away) 'restarting'" in plain(terminal.output)


async def test_interactive_uses_colors_on_a_terminal_unless_no_color() -> None:
    async with fullduplex_server() as peer, Terminal("connect", peer.url) as terminal:
        await terminal.expect(PROMPT)
        terminal.type(b"hi" + ENTER)
        await terminal.expect(b"\x1b\\[32m< \x1b\\[0mhi")  # green arrow
        terminal.type(b"\x04")
        assert await terminal.exit_status() == 0
    async with (
        fullduplex_server() as peer,
        Terminal("connect", peer.url, env={"NO_COLOR": "1"}) as terminal,
    ):
        await terminal.expect(PROMPT)
        terminal.type(b"hi" + ENTER)
        await terminal.expect(b"\r< hi\r\n")
        terminal.type(b"\x04")
        assert await terminal.exit_status() == 0
    assert b"\x1b[32m" not in terminal.output and b"\x1b[2m" not in terminal.output


async def test_interactive_without_readline_reads_plain_lines() -> None:
    async with (
        fullduplex_server() as peer,
        Terminal(
            "connect",
            peer.url,
            python_code=(
                "import sys\n"
                "sys.modules['readline'] = None  # as on a Python built without it\n"
                "from fullduplex.cli import main\n"
                "sys.exit(main(sys.argv[1:]))\n"
            ),
        ) as terminal,
    ):
        await terminal.expect(PROMPT)
        terminal.type(b"plain line" + ENTER)
        await terminal.expect(b"< .*plain line")
        terminal.type(b"\x04")
        assert await terminal.exit_status() == 0
    assert peer.received == ["plain line"]
