"""Fixtures for the protocol tests."""

from __future__ import annotations

import pytest

from fullduplex.protocol import frames


@pytest.fixture(params=["compiled", "python"])
def parse_messages_implementation(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Run the test with the compiled loop of `FrameParser.next_messages`, then the pure one.

    Both run in each pass of the suite (with and without ``FULLDUPLEX_NO_SPEEDUPS=1``), so that
    one pass compares them; the compiled one is skipped when the extension is not built.
    """
    if request.param == "compiled":
        try:
            from fullduplex.protocol._speedups import parse_messages
        except ImportError:
            pytest.skip(
                "fullduplex.protocol._speedups is not built; rebuild: "
                "FULLDUPLEX_BUILD_SPEEDUPS=require .venv/bin/pip install -e ."
            )
        monkeypatch.setattr(frames, "_take_messages", parse_messages)
    else:
        monkeypatch.setattr(frames, "_take_messages", frames._take_messages_python)
    return str(request.param)
