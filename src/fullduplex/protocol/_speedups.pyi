from collections.abc import Callable
from typing import Any

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes: ...
def unmask_payload(
    buffer: bytes | bytearray | memoryview, key_offset: int, start: int, end: int, /
) -> bytes: ...
def parse_messages(
    buffer: bytes | bytearray | memoryview,
    position: int,
    mask_bit: int,
    max_payload: int,
    events: list[Any],
    text_type: Callable[[str], Any] | None,
    binary_type: Callable[[bytes], Any] | None,
    /,
) -> int: ...
def deliver_messages(
    callback: Callable[[str | bytes], object],
    owner: object,
    open_state: object,
    mask_bit: int,
    max_payload: int,
    buffer: bytes | bytearray | memoryview,
    nbytes: int,
    /,
) -> int | tuple[int, Exception]: ...
def frame_message(message: str | bytes, /) -> bytes: ...
def parse_request_head(
    buffer: bytes | bytearray | memoryview, end: int, max_headers: int, /
) -> tuple[str, str, str, list[str], int, int, str | None] | None: ...

class MessageDeliverer:
    def __init__(
        self,
        callback: Callable[[str | bytes], object],
        owner: object,
        open_state: object,
        mask_bit: int,
        max_payload: int,
        /,
    ) -> None: ...
    def __call__(
        self, buffer: bytes | bytearray | memoryview, nbytes: int, /
    ) -> int | tuple[int, Exception]: ...

class PlainReads:
    connection: Any
    def __init__(self, connection: Any) -> None: ...
    def data_received(self, data: bytes, /) -> None: ...
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None, /) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
