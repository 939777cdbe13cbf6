// socket.io-client 4.8 (Node) against examples/socketio_test_server.py, in one transport mode.
// Usage: node sio_client.js URL MODE    (MODE: polling | websocket | upgrade)
// Prints one JSON line per check (sio_checks.js): {"check", "ok", "detail"}; exit 0 if all passed.
"use strict";
const { io } = require("socket.io-client");
const { runChecks, TRANSPORTS } = require("./sio_checks.js");

const [url, mode] = process.argv.slice(2);
if (!url || !TRANSPORTS[mode]) {
  console.error("usage: node sio_client.js URL polling|websocket|upgrade");
  process.exit(2);
}
runChecks({ io, url, mode }).then((results) => {
  for (const result of results) console.log(JSON.stringify(result));
  process.exit(results.every((result) => result.ok) ? 0 : 1);
});
