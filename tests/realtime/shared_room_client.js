// A sockjs-client (one forced transport) and a socket.io-client in one chat room, through one
// hub: each sees the other's message and both are in the room's presence list.
// Usage: node shared_room_client.js URL SOCKJS_TRANSPORT   (websocket | xhr-streaming | xhr-polling)
"use strict";
const path = require("path");
const SockJS = require(path.resolve(__dirname, "../../src/fullduplex/transports/sockjs/client/node_modules/sockjs-client"));
const { io } = require("socket.io-client");

const [url, transport] = process.argv.slice(2);
const fail = (why) => { console.log(JSON.stringify({ ok: false, why })); process.exit(1); };
setTimeout(() => fail("timeout"), 15000);

const sockjs = new SockJS(`${url}/sockjs`, null, { transports: [transport] });
let nextAck = 1;
const pending = new Map();
const sockjsEvents = [];
function call(event, ...args) {
  const ack = nextAck++;
  sockjs.send(JSON.stringify({ event, args, ack }));
  return new Promise((resolve) => pending.set(ack, resolve));
}
sockjs.onmessage = (message) => {
  const packet = JSON.parse(message.data);
  if (packet.ack !== undefined) pending.get(packet.ack)(packet.args);
  else sockjsEvents.push(packet);
};

sockjs.onopen = async () => {
  const sio = io(`${url}/chat`, { transports: ["websocket"], forceNew: true });
  await new Promise((resolve) => sio.on("connect", resolve));
  const sioGot = new Promise((resolve) => sio.on("said", (nick, text) => resolve([nick, text])));
  await sio.emitWithAck("join", "lobby", "sio-user");
  const [members] = await call("join", "lobby", "sockjs-user");
  await call("say", "lobby", "hello from sockjs");
  const heard = await sioGot;
  await sio.emitWithAck("say", "lobby", "hello from socket.io");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const texts = sockjsEvents.filter((p) => p.event === "said").map((p) => p.args[1]);
  const ok = JSON.stringify(members) === JSON.stringify(["sio-user", "sockjs-user"])
    && heard[1] === "hello from sockjs"
    && JSON.stringify(texts) === JSON.stringify(["hello from sockjs", "hello from socket.io"]);
  console.log(JSON.stringify({ ok, transport: sockjs.transport, members, heard, texts }));
  sio.disconnect(); sockjs.close();
  process.exit(ok ? 0 : 1);
};
