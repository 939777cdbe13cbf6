"""Tests for the opening handshake's rules (RFC 6455 §4), as pure functions on parsed messages."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from http import HTTPStatus

import pytest

from fullduplex.exceptions import InvalidRequest, InvalidResponse, NegotiationError
from fullduplex.protocol.extensions.permessage_deflate import (
    ClientPerMessageDeflate,
    PerMessageDeflate,
    ServerPerMessageDeflate,
)
from fullduplex.protocol.handshake import (
    ServerNegotiation,
    accept_key,
    build_accept_response,
    build_error_response,
    build_request,
    check_request,
    check_response,
    generate_key,
    negotiate,
    parse_token_list,
)
from fullduplex.protocol.http11 import Headers, Request, Response

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3

BASE_HEADERS = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]


def make_request(
    *,
    method: str = "GET",
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
) -> Request:
    """The RFC 6455 §1.3 request, without the headers named in ``drop``, plus ``add``."""
    dropped = {name.lower() for name in drop}
    headers = [(name, value) for name, value in BASE_HEADERS if name.lower() not in dropped]
    return Request("/chat", Headers([*headers, *add]), method)


def make_response(*, drop: Sequence[str] = (), add: Sequence[tuple[str, str]] = ()) -> Response:
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
    ]
    dropped = {name.lower() for name in drop}
    return Response(101, [*[(n, v) for n, v in headers if n.lower() not in dropped], *add])


def refusal(request: Request, negotiation: ServerNegotiation | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        check_request(request, negotiation or ServerNegotiation())
    return info.value


# --- keys ----------------------------------------------------------------------------------


def test_accept_key_matches_rfc_6455_example() -> None:
    assert accept_key(KEY) == ACCEPT


def test_generate_key_returns_16_fresh_random_bytes_in_base64() -> None:
    keys = {generate_key() for _ in range(8)}
    assert len(keys) == 8
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


# --- parse_token_list ----------------------------------------------------------------------


def test_parse_token_list_splits_every_header_line_and_skips_empty_items() -> None:
    values = ["chat, superchat", " ,, v2.json\t", ""]
    assert parse_token_list(values, what="X") == ["chat", "superchat", "v2.json"]


@pytest.mark.parametrize("value", ["chat room", "chat;v=1", '"chat"', "chät"])
def test_parse_token_list_refuses_non_token_items(value: str) -> None:
    with pytest.raises(ValueError, match="in Sec-WebSocket-Protocol"):
        parse_token_list([value], what="Sec-WebSocket-Protocol")


# --- check_request -------------------------------------------------------------------------


def test_server_accepts_rfc_request_and_returns_its_key() -> None:
    assert check_request(make_request(), ServerNegotiation()) == KEY


@pytest.mark.parametrize(
    ("drop", "add"),
    [
        pytest.param(
            ["Connection"], [("Connection", "keep-alive, Upgrade")], id="connection-token-list"
        ),
        pytest.param(
            ["Connection"],
            [("connection", "keep-alive"), ("CONNECTION", "UPGRADE")],
            id="two-lines",
        ),
        pytest.param(["Upgrade"], [("upgrade", "WebSocket")], id="upgrade-case-insensitive"),
        pytest.param(["Upgrade"], [("Upgrade", "h2c, websocket")], id="upgrade-token-list"),
        pytest.param([], [("Origin", "https://anywhere.example")], id="any-origin-by-default"),
    ],
)
def test_server_accepts_request_variants_rfc_allows(
    drop: list[str], add: list[tuple[str, str]]
) -> None:
    assert check_request(make_request(drop=drop, add=add), ServerNegotiation()) == KEY


def test_server_refuses_non_get_method_with_405_and_allow_header() -> None:
    error = refusal(make_request(method="POST"))
    assert error.http_status == HTTPStatus.METHOD_NOT_ALLOWED
    assert error.headers == (("Allow", "GET"),)


@pytest.mark.parametrize(
    ("drop", "add"),
    [
        pytest.param(["Upgrade"], [], id="missing-upgrade"),
        pytest.param(["Upgrade"], [("Upgrade", "h2c")], id="other-upgrade"),
        pytest.param(["Upgrade"], [("Upgrade", "websocket2")], id="upgrade-prefix-only"),
        pytest.param(["Connection"], [], id="missing-connection"),
        pytest.param(
            ["Connection"], [("Connection", "keep-alive")], id="connection-without-upgrade"
        ),
    ],
)
def test_server_refuses_request_without_upgrade_with_426(
    drop: list[str], add: list[tuple[str, str]]
) -> None:
    error = refusal(make_request(drop=drop, add=add))
    assert error.http_status == HTTPStatus.UPGRADE_REQUIRED
    assert ("Upgrade", "websocket") in error.headers


@pytest.mark.parametrize(
    "versions",
    [[], ["8"], ["12"], ["14"], ["13", "13"], ["13, 8"], [" "]],
)
def test_server_refuses_unsupported_version_with_426_naming_13(versions: list[str]) -> None:
    add = [("Sec-WebSocket-Version", version) for version in versions]
    error = refusal(make_request(drop=["Sec-WebSocket-Version"], add=add))
    assert error.http_status == HTTPStatus.UPGRADE_REQUIRED
    assert error.headers == (("Sec-WebSocket-Version", "13"),)


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param([], id="missing"),
        pytest.param([KEY, KEY], id="repeated"),
        pytest.param(["not base64 at all!"], id="not-base64"),
        pytest.param([base64.b64encode(bytes(15)).decode()], id="15-bytes"),
        pytest.param([base64.b64encode(bytes(17)).decode()], id="17-bytes"),
        pytest.param([KEY.rstrip("=")], id="unpadded"),
        pytest.param([""], id="empty"),
        pytest.param(["é" * 24], id="non-ascii"),
    ],
)
def test_server_refuses_bad_key_with_400(keys: list[str]) -> None:
    add = [("Sec-WebSocket-Key", key) for key in keys]
    error = refusal(make_request(drop=["Sec-WebSocket-Key"], add=add))
    assert error.http_status == HTTPStatus.BAD_REQUEST
    assert "Sec-WebSocket-Key" in str(error)


@pytest.mark.parametrize("hosts", [[], ["a.example", "b.example"]])
def test_server_refuses_request_without_exactly_one_host_with_400(hosts: list[str]) -> None:
    error = refusal(make_request(drop=["Host"], add=[("Host", host) for host in hosts]))
    assert error.http_status == HTTPStatus.BAD_REQUEST
    assert "Host" in str(error)


def test_server_allows_listed_origin() -> None:
    negotiation = ServerNegotiation(origins=["https://a.example", "https://b.example"])
    request = make_request(add=[("Origin", "https://b.example")])
    assert check_request(request, negotiation) == KEY


@pytest.mark.parametrize(
    ("origins", "add"),
    [
        pytest.param(["https://a.example"], [("Origin", "https://evil.example")], id="unlisted"),
        pytest.param(["https://a.example"], [("Origin", "https://A.example")], id="case-differs"),
        pytest.param(["https://a.example"], [], id="missing-without-none"),
        pytest.param([], [("Origin", "https://a.example")], id="empty-list"),
    ],
)
def test_server_refuses_unlisted_origin_with_403(
    origins: list[str | None], add: list[tuple[str, str]]
) -> None:
    error = refusal(make_request(add=add), ServerNegotiation(origins=origins))
    assert error.http_status == HTTPStatus.FORBIDDEN


def test_server_allows_missing_origin_when_none_is_listed() -> None:
    negotiation = ServerNegotiation(origins=["https://a.example", None])
    assert check_request(make_request(), negotiation) == KEY
    refusal(make_request(add=[("Origin", "https://evil.example")]), negotiation)


def test_server_refuses_two_origin_headers_with_400() -> None:
    request = make_request(add=[("Origin", "https://a.example"), ("Origin", "https://a.example")])
    error = refusal(request, ServerNegotiation(origins=["https://a.example"]))
    assert error.http_status == HTTPStatus.BAD_REQUEST


def test_server_checks_method_before_anything_else() -> None:
    error = refusal(make_request(method="PUT", drop=["Upgrade", "Host", "Sec-WebSocket-Key"]))
    assert error.http_status == HTTPStatus.METHOD_NOT_ALLOWED


# --- negotiate -----------------------------------------------------------------------------


def offer_protocols(*values: str) -> Request:
    return make_request(add=[("Sec-WebSocket-Protocol", value) for value in values])


def test_server_negotiates_nothing_when_nothing_is_offered() -> None:
    negotiation = ServerNegotiation(subprotocols=["chat"], extensions=[ServerPerMessageDeflate()])
    assert negotiate(make_request(), negotiation) == (None, [], Headers())


def test_server_picks_subprotocol_by_its_own_preference() -> None:
    negotiation = ServerNegotiation(subprotocols=["v2", "v1"])
    subprotocol, extensions, headers = negotiate(offer_protocols("v1, v2"), negotiation)
    assert subprotocol == "v2"
    assert extensions == []
    assert list(headers) == [("Sec-WebSocket-Protocol", "v2")]


def test_server_picks_no_subprotocol_without_common_one() -> None:
    negotiation = ServerNegotiation(subprotocols=["v3"])
    assert negotiate(offer_protocols("v1", "v2"), negotiation) == (None, [], Headers())
    assert negotiate(offer_protocols("v1"), ServerNegotiation()) == (None, [], Headers())


def test_server_asks_selector_with_offers_in_client_order() -> None:
    seen: list[Sequence[str]] = []

    def select(offered: Sequence[str]) -> str | None:
        seen.append(offered)
        return offered[-1]

    negotiation = ServerNegotiation(subprotocols=["a"], select_subprotocol=select)
    subprotocol, _, headers = negotiate(offer_protocols("c, b", "a"), negotiation)
    assert seen == [["c", "b", "a"]]
    assert subprotocol == "a"  # the selector overrides the list
    assert headers.get("Sec-WebSocket-Protocol") == "a"


def test_server_selector_may_choose_no_subprotocol() -> None:
    negotiation = ServerNegotiation(select_subprotocol=lambda offered: None)
    assert negotiate(offer_protocols("chat"), negotiation) == (None, [], Headers())


def test_server_fails_when_selector_picks_unoffered_subprotocol() -> None:
    negotiation = ServerNegotiation(select_subprotocol=lambda offered: "other")
    with pytest.raises(InvalidRequest, match="'other' was not offered") as info:
        negotiate(offer_protocols("chat"), negotiation)
    assert info.value.http_status == HTTPStatus.BAD_REQUEST


def test_server_refuses_malformed_subprotocol_offer() -> None:
    with pytest.raises(InvalidRequest, match="invalid token"):
        negotiate(offer_protocols("chat room"), ServerNegotiation(subprotocols=["chat"]))


def test_server_negotiates_permessage_deflate() -> None:
    negotiation = ServerNegotiation(extensions=[ServerPerMessageDeflate()])
    request = make_request(
        add=[("Sec-WebSocket-Extensions", "x-unknown, PerMessage-Deflate; client_max_window_bits")]
    )
    subprotocol, extensions, headers = negotiate(request, negotiation)
    assert subprotocol is None
    assert len(extensions) == 1
    assert isinstance(extensions[0], PerMessageDeflate)
    assert list(headers) == [("Sec-WebSocket-Extensions", "permessage-deflate")]


def test_server_answers_with_narrowed_deflate_parameters() -> None:
    negotiation = ServerNegotiation(
        extensions=[
            ServerPerMessageDeflate(server_no_context_takeover=True, client_max_window_bits=10)
        ]
    )
    request = make_request(
        add=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]
    )
    _, _, headers = negotiate(request, negotiation)
    assert headers.get("Sec-WebSocket-Extensions") == (
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
    )


def test_server_declines_extension_it_does_not_support() -> None:
    negotiation = ServerNegotiation(extensions=[ServerPerMessageDeflate()])
    request = make_request(add=[("Sec-WebSocket-Extensions", "x-webkit-deflate-frame")])
    assert negotiate(request, negotiation) == (None, [], Headers())


def test_server_refuses_malformed_extension_header_with_400() -> None:
    negotiation = ServerNegotiation(extensions=[ServerPerMessageDeflate()])
    request = make_request(add=[("Sec-WebSocket-Extensions", "permessage-deflate;;")])
    with pytest.raises(InvalidRequest) as info:
        negotiate(request, negotiation)
    assert info.value.http_status == HTTPStatus.BAD_REQUEST


def test_server_without_extensions_ignores_extension_header() -> None:
    request = make_request(add=[("Sec-WebSocket-Extensions", "permessage-deflate;;")])
    assert negotiate(request, ServerNegotiation()) == (None, [], Headers())


# --- responses the server builds ------------------------------------------------------------


def test_server_builds_101_with_accept_then_negotiated_then_extra_headers() -> None:
    response = build_accept_response(
        KEY, Headers([("Sec-WebSocket-Protocol", "chat")]), [("Server", "fullduplex")]
    )
    assert response.status == 101
    assert list(response.headers) == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", ACCEPT),
        ("Sec-WebSocket-Protocol", "chat"),
        ("Server", "fullduplex"),
    ]


def test_server_builds_error_response_with_status_headers_and_reason() -> None:
    error = InvalidRequest(
        "bad version", HTTPStatus.UPGRADE_REQUIRED, (("Sec-WebSocket-Version", "13"),)
    )
    response = build_error_response(error)
    assert response.status == 426
    assert list(response.headers) == [
        ("Sec-WebSocket-Version", "13"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Connection", "close"),
    ]
    assert response.body == b"Failed to open a WebSocket connection: bad version.\n"


# --- the client's request -------------------------------------------------------------------


def test_client_builds_rfc_request() -> None:
    request = build_request("server.example.com", "/chat", KEY)
    assert (request.method, request.path) == ("GET", "/chat")
    assert list(request.headers) == BASE_HEADERS
    assert check_request(request, ServerNegotiation()) == KEY


def test_client_builds_request_with_origin_offers_and_extra_headers() -> None:
    request = build_request(
        "h:8080",
        "/?q=1",
        KEY,
        origin="https://h",
        subprotocols=["chat", "superchat"],
        extensions=[ClientPerMessageDeflate()],
        extra_headers=[("Authorization", "Bearer t")],
    )
    assert list(request.headers)[5:] == [
        ("Origin", "https://h"),
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Authorization", "Bearer t"),
    ]


# --- check_response ------------------------------------------------------------------------


def test_client_accepts_rfc_response() -> None:
    assert check_response(make_response(), KEY) == (None, [])


@pytest.mark.parametrize(
    ("drop", "add", "message"),
    [
        (["Upgrade"], [], "Upgrade"),
        (["Upgrade"], [("Upgrade", "h2c")], "Upgrade"),
        (["Connection"], [], "Connection"),
        (["Connection"], [("Connection", "keep-alive")], "Connection"),
        (["Sec-WebSocket-Accept"], [], "Accept"),
        (["Sec-WebSocket-Accept"], [("Sec-WebSocket-Accept", accept_key("other"))], "Accept"),
        ([], [("Sec-WebSocket-Accept", ACCEPT)], "Accept"),
    ],
)
def test_client_refuses_response_that_does_not_complete_handshake(
    drop: list[str], add: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(InvalidResponse, match=message):
        check_response(make_response(drop=drop, add=add), KEY)


def test_client_accepts_case_insensitive_upgrade_tokens() -> None:
    response = make_response(
        drop=["Upgrade", "Connection"],
        add=[("upgrade", "WebSocket"), ("connection", "keep-alive, UPGRADE")],
    )
    assert check_response(response, KEY) == (None, [])


def test_client_accepts_offered_subprotocol() -> None:
    response = make_response(add=[("Sec-WebSocket-Protocol", "superchat")])
    assert check_response(response, KEY, subprotocols=["chat", "superchat"]) == ("superchat", [])


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [([], ["chat"]), (["chat"], ["superchat"]), (["chat", "superchat"], ["chat", "superchat"])],
)
def test_client_fails_when_server_picks_unoffered_subprotocol(
    offered: list[str], chosen: list[str]
) -> None:
    response = make_response(add=[("Sec-WebSocket-Protocol", value) for value in chosen])
    with pytest.raises(NegotiationError, match="not offered"):
        check_response(response, KEY, subprotocols=offered)


def test_client_activates_accepted_extension() -> None:
    response = make_response(
        add=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=12")]
    )
    subprotocol, active = check_response(response, KEY, extensions=[ClientPerMessageDeflate()])
    assert subprotocol is None
    assert len(active) == 1
    assert isinstance(active[0], PerMessageDeflate)
    assert active[0].local_max_window_bits == 12


@pytest.mark.parametrize(
    ("offered", "header"),
    [
        pytest.param(False, "permessage-deflate", id="not-offered"),
        pytest.param(True, "x-unknown", id="other-extension"),
        pytest.param(True, "permessage-deflate, permessage-deflate", id="accepted-twice"),
    ],
)
def test_client_fails_when_server_accepts_unoffered_extension(offered: bool, header: str) -> None:
    response = make_response(add=[("Sec-WebSocket-Extensions", header)])
    extensions = [ClientPerMessageDeflate()] if offered else []
    with pytest.raises(NegotiationError, match="not offered"):
        check_response(response, KEY, extensions=extensions)


@pytest.mark.parametrize("header", ["permessage-deflate; bogus", "permessage-deflate;", ","])
def test_client_fails_on_malformed_extension_answer(header: str) -> None:
    response = make_response(add=[("Sec-WebSocket-Extensions", header)])
    with pytest.raises(NegotiationError):
        check_response(response, KEY, extensions=[ClientPerMessageDeflate()])
