from fullduplex.protocol.events import BinaryReceived, Event, TextReceived

def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes: ...
def unmask_payload(
    buffer: bytes | bytearray | memoryview, key_offset: int, start: int, end: int, /
) -> bytes: ...
def parse_messages(
    buffer: bytes | bytearray | memoryview,
    position: int,
    mask_bit: int,
    max_payload: int,
    events: list[Event],
    text_type: type[TextReceived],
    binary_type: type[BinaryReceived],
    /,
) -> int: ...
