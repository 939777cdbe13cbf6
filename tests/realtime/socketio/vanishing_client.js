// Joins a room on examples/socketio_test_server.py over WebSocket, prints its socket id, then
// keeps the connection open. The test stops this process (SIGSTOP): it vanishes without a close.
// Usage: node vanishing_client.js URL ROOM
"use strict";
const { io } = require("socket.io-client");
const [url, room] = process.argv.slice(2);
const socket = io(url, { transports: ["websocket"], reconnection: false });
socket.on("connect", async () => {
  await socket.emitWithAck("join", room);
  console.log(socket.id);
});
