"""The interactive terminal of `fullduplex connect`: a line editor and colors.

Messages arrive while the user types. The line editor reads keys from the event loop, so that
a message can be printed above the line being typed, which is then drawn again as it was:
GNU readline's callback interface (``rl_callback_read_char``), which Python's `readline`
module loads but does not expose, reached through `ctypes`. Where that is missing (no
readline, or a readline without those functions), `PlainLineReader` reads whole lines the
terminal has edited itself: no history, and text being typed is not redrawn after a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["Style", "LineEditor", "ReadlineEditor", "PlainLineReader", "line_editor"]

LineHandler = Callable[[str | None], None]
"""Called with each line the user enters, without its newline; None at end of input (Ctrl-D)."""


class Style:
    """ANSI colors, or nothing: for a terminal, unless ``NO_COLOR`` is set (no-color.org)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_terminal(cls) -> Style:
        return cls(not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled else text

    def incoming(self, text: str) -> str:
        return self._paint("32", text)  # green

    def outgoing(self, text: str) -> str:
        return self._paint("36", text)  # cyan

    def info(self, text: str) -> str:
        return self._paint("2", text)  # dim

    def error(self, text: str) -> str:
        return self._paint("31", text)  # red

    def prompt(self, text: str) -> str:
        """A prompt for readline: escapes wrapped in \\x01 \\x02, so that they take no width."""
        return f"\x01\x1b[1m\x02{text}\x01\x1b[0m\x02" if self.enabled else text


class LineEditor(Protocol):
    """Reads lines from the terminal while messages are printed."""

    def start(self) -> None:
        """Show the prompt and start reading keys."""

    def print_above(self, text: str) -> None:
        """Print ``text`` (and a newline) above the line being typed, which stays as it was."""

    def stop(self) -> None:
        """Stop reading, leave the cursor on a fresh line and the terminal as it was found."""


class ReadlineEditor:
    """GNU readline driven by the event loop: history (up and down arrows), editing,
    completion of slash-commands, and messages printed above the line being typed.

    Raises:
        OSError: this readline lacks the callback interface (``__init__`` only).
    """

    def __init__(
        self, prompt: str, on_line: LineHandler, commands: Sequence[str] = (), fd: int = 0
    ) -> None:
        import readline

        self._readline = readline
        self._fd = fd
        self._prompt = prompt.encode()
        self._on_line = on_line
        self._commands = list(commands)
        self._active = False
        self._saved_mode: list[Any] | None = None
        # Python's readline module is linked to the library; its handle finds their symbols.
        library = ctypes.CDLL(getattr(readline, "__file__", None))
        try:
            self._install = library.rl_callback_handler_install
            self._read_char = library.rl_callback_read_char
            self._remove = library.rl_callback_handler_remove
            self._redraw = library.rl_forced_update_display
            self._resize = library.rl_resize_terminal
            catch_signals = ctypes.c_int.in_dll(library, "rl_catch_signals")
            catch_sigwinch = ctypes.c_int.in_dll(library, "rl_catch_sigwinch")
        except (AttributeError, ValueError) as exc:
            raise OSError(f"this readline has no callback interface: {exc}") from None
        # Older readline versions lack it; clearing the last screen line then suffices.
        self._clear_line: Callable[[], object] | None = getattr(
            library, "rl_clear_visible_line", None
        )
        self._fflush = ctypes.CDLL(None).fflush
        self._fflush.argtypes = [ctypes.c_void_p]
        line_handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
        self._install.argtypes = [ctypes.c_char_p, line_handler_type]
        self._install.restype = None
        # A reference keeps the C callback alive as long as readline may call it.
        self._line_handler = line_handler_type(self._handle_line)
        # The event loop handles signals, and a resize through `_on_resize`.
        catch_signals.value = 0
        catch_sigwinch.value = 0

    def start(self) -> None:
        readline = self._readline
        readline.set_completer(self._complete)
        readline.set_completer_delims(" ")
        readline.parse_and_bind("tab: complete")
        import termios

        with contextlib.suppress(termios.error):
            self._saved_mode = termios.tcgetattr(self._fd)
        self._install(self._prompt, self._line_handler)
        self._active = True
        loop = asyncio.get_running_loop()
        loop.add_reader(self._fd, self._read_char)
        with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
            import signal

            loop.add_signal_handler(signal.SIGWINCH, self._on_resize)

    def print_above(self, text: str) -> None:
        if not self._active:
            _write(text + "\n")
            return
        self._clear_visible_line()
        _write(text + "\n")
        self._redraw()

    def _clear_visible_line(self) -> None:
        if self._clear_line is not None:
            self._clear_line()  # every screen line of the input, even wrapped
            self._fflush(None)  # readline writes through C stdio; ours is Python's
        else:
            _write("\r\x1b[K")

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
            import signal

            loop.remove_signal_handler(signal.SIGWINCH)
        self._clear_visible_line()  # the prompt, and whatever was typed after it
        self._remove()
        self._fflush(None)
        if self._saved_mode is not None:
            import termios

            with contextlib.suppress(termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_mode)

    def _handle_line(self, raw: bytes | None) -> None:
        if raw is None:
            self._on_line(None)
            return
        line = raw.decode(errors="replace")
        history = self._readline
        length = history.get_current_history_length()
        if line and (length == 0 or history.get_history_item(length) != line):
            history.add_history(line)
        self._on_line(line)

    def _on_resize(self) -> None:
        self._resize()

    def _complete(self, text: str, state: int) -> str | None:
        if not text.startswith("/") or self._readline.get_begidx() != 0:
            return None
        matches = [command + " " for command in self._commands if command.startswith(text)]
        return matches[state] if state < len(matches) else None


class PlainLineReader:
    """Whole lines as the terminal edits them (canonical mode), read in a thread: the
    fallback without readline."""

    def __init__(self, prompt: str, on_line: LineHandler, fd: int = 0) -> None:
        self._prompt = prompt.replace("\x01", "").replace("\x02", "")
        self._on_line = on_line
        self._fd = fd
        self._active = False

    def start(self) -> None:
        self._active = True
        loop = asyncio.get_running_loop()
        _write(self._prompt)
        threading.Thread(target=self._read, args=(loop,), daemon=True).start()

    def print_above(self, text: str) -> None:
        _write(f"\r\x1b[K{text}\n{self._prompt}" if self._active else text + "\n")

    def stop(self) -> None:
        if self._active:
            self._active = False
            _write("\n")

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read can make the
        # interpreter abort at exit, when it tries to take the buffer's lock.
        pending = b""
        with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: the loop is closed
            while chunk := os.read(self._fd, 4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    loop.call_soon_threadsafe(self._deliver, line.decode(errors="replace"))
            loop.call_soon_threadsafe(self._deliver, None)

    def _deliver(self, line: str | None) -> None:
        if self._active:
            if line is not None:
                _write(self._prompt)
            self._on_line(line)


def line_editor(prompt: str, on_line: LineHandler, commands: Sequence[str]) -> LineEditor:
    """The best line editor this Python has: `ReadlineEditor`, else `PlainLineReader`."""
    try:
        return ReadlineEditor(prompt, on_line, commands)
    except (ImportError, OSError):
        return PlainLineReader(prompt, on_line)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
