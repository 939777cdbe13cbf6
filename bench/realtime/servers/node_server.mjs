// The benchmark's Socket.IO server on the reference implementation (socket.io 4.8):
// "echo" acknowledges its arguments, "fanout" broadcasts "tick" to every connected client.
// Usage: node bench/realtime/servers/node_server.mjs --port 0   (prints "ready PORT")
import http from "node:http";
import { Server } from "socket.io";

const portIndex = process.argv.indexOf("--port");
const port = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 0;

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, { serveClient: false });
io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
  socket.on("fanout", (payload) => io.emit("tick", payload));
});
httpServer.listen({ port, host: "127.0.0.1", backlog: 4096 }, () => {
  console.log(`ready ${httpServer.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
