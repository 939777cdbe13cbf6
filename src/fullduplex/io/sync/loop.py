"""An asyncio event loop in a background thread: how blocking code drives the asyncio layer.

The blocking client (`fullduplex.sync`) and `WebSocket` outside a running loop both own one:
the connection lives on the loop, exactly as an asyncio application's would, and the caller's
thread hands it work and waits for the outcome.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "LoopStopped"]

T = TypeVar("T")


class LoopStopped(RuntimeError):
    """The loop thread has stopped: nothing can run on it any more."""


class LoopThread:
    """A new event loop, running in a daemon thread until `stop`.

    A daemon thread, so that a connection nobody closed does not keep the interpreter alive;
    its socket closes with the process.

    Args:
        name: the thread's name, for debuggers and ``threading.enumerate()``.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # Whatever still runs (a listener's coroutine, a connection's last timer) is
            # cancelled, so that the loop closes without "Task was destroyed but it is pending".
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def ident(self) -> int:
        """The loop thread's identifier (`threading.get_ident` in that thread)."""
        assert self._thread.ident is not None  # set once started
        return self._thread.ident

    @property
    def in_loop_thread(self) -> bool:
        """Whether the calling thread is the loop's."""
        return threading.current_thread() is self._thread

    @property
    def is_stopped(self) -> bool:
        """Whether `stop` was called (or the loop stopped itself)."""
        return self.loop.is_closed() or not self._thread.is_alive()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coroutine`` on the loop; the returned future resolves with its outcome.

        Raises:
            LoopStopped: the loop has stopped; ``coroutine`` is closed, never run.
        """
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # "Event loop is closed"
            coroutine.close()
            raise LoopStopped("the event loop thread has stopped") from None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result in the calling thread.

        If the wait is interrupted (KeyboardInterrupt), the coroutine is cancelled.

        Raises:
            LoopStopped: the loop stopped before the coroutine finished.
            RuntimeError: called from the loop's own thread, which would wait for itself.
        """
        if self.in_loop_thread:
            coroutine.close()
            raise RuntimeError("cannot block the event loop's thread waiting for the loop")
        future = self.submit(coroutine)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            # Nobody else cancels these futures: `stop` cancelled the task on its way out.
            raise LoopStopped("the event loop thread stopped before the call finished") from None
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and close it, after cancelling what still runs. Idempotent.

        From another thread, waits until the loop is closed; from the loop's own thread,
        returns at once and the loop stops when the current callback returns.
        """
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed meanwhile by another thread's stop
            return
        if not self.in_loop_thread:
            self._thread.join()
