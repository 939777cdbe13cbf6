"""I/O layers that drive the sans-I/O protocol: asyncio today."""
