"""A FastAPI chat room whose WebSocket route runs on fullduplex (docs/asgi.md).

Run it with::

    uvicorn examples.fastapi_chat:app --ws fullduplex.asgi:WebSocketProtocol

then open http://127.0.0.1:8000/ in two browser tabs, or connect from Python::

    python -m fullduplex connect "ws://127.0.0.1:8000/chat?name=ada"

The application is plain FastAPI: nothing in it knows which WebSocket implementation
uvicorn uses. A client without a ``name`` is refused with an HTTP 400 response (ASGI's
``websocket.http.response`` extension), before the WebSocket opens.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, PlainTextResponse

app = FastAPI()
members: dict[WebSocket, str] = {}

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>fullduplex chat</title>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off"><button>Send</button></form>
<script>
const name = new URLSearchParams(location.search).get("name") || "guest";
const socket = new WebSocket(`ws://${location.host}/chat?name=${encodeURIComponent(name)}`);
socket.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("log").append(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  socket.send(document.getElementById("text").value);
  document.getElementById("text").value = "";
};
</script>
"""


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


@app.websocket("/chat")
async def chat(websocket: WebSocket) -> None:
    name = websocket.query_params.get("name")
    if not name:
        await websocket.send_denial_response(PlainTextResponse("name required", 400))
        return
    await websocket.accept()
    members[websocket] = name
    await broadcast(f"{name} joined")
    try:
        while True:
            text = await websocket.receive_text()
            await broadcast(f"{name}: {text}")
    except WebSocketDisconnect:
        pass
    finally:
        del members[websocket]
    await broadcast(f"{name} left")


async def broadcast(text: str) -> None:
    for member in list(members):
        # A member that just left: its own handler removes it.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await member.send_text(text)
