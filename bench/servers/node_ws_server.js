// Node `ws` echo server for the benchmark, with bufferutil (see bench/servers/common.py for
// the contract: --port PORT, --deflate, "ready PORT node" on stdout, stop on SIGTERM).
// ws picks bufferutil up by itself when it is installed (bench/package.json); text is checked
// to be UTF-8 with Node's own buffer.isUtf8.
"use strict";

const { WebSocketServer } = require("ws");

const MAX_MESSAGE_SIZE = 16 * 2 ** 20;

function option(name) {
  return process.argv.includes(name);
}

function value(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

require("bufferutil"); // fail now, not silently slower, when it is missing

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: Number(value("--port", "0")),
  maxPayload: MAX_MESSAGE_SIZE,
  perMessageDeflate: option("--deflate"),
});

server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.on("listening", () => {
  console.log(`ready ${server.address().port} node`);
});

process.on("SIGTERM", () => {
  for (const ws of server.clients) ws.terminate();
  server.close(() => process.exit(0));
});
