"""I/O layers that drive the sans-I/O protocol: asyncio (`io.asyncio`), a blocking client on top
of it (`io.sync`), and the browser's WebSocket interface (`io.browser`)."""

__all__: list[str] = []
