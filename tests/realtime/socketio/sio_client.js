// socket.io-client 4.8 against examples/socketio_test_server.py, in one transport mode.
// Usage: node sio_client.js URL MODE    (MODE: polling | websocket | upgrade)
// Prints one JSON line per check: {"check": name, "ok": bool, "detail": ...}; exits 0 when all passed.
"use strict";
const { io } = require("socket.io-client");

const [url, mode] = process.argv.slice(2);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
if (!url || !TRANSPORTS[mode]) {
  console.error("usage: node sio_client.js URL polling|websocket|upgrade");
  process.exit(2);
}
const STEP_MS = 4000;
const opened = [];

function client(nsp = "/", extra = {}) {
  const socket = io(url + nsp, {
    transports: TRANSPORTS[mode],
    upgrade: mode === "upgrade",
    forceNew: true,
    reconnectionDelay: 300,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
    ...extra,
  });
  opened.push(socket);
  return socket;
}

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

function within(promise, what, ms = STEP_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function ack(socket, ...args) {
  return new Promise((resolve) => socket.emit(...args, (...reply) => resolve(reply)));
}

function silence(socket, event, ms = 300) {
  return new Promise((resolve, reject) => {
    const fail = (...args) => reject(new Error(`unexpected ${event}: ${JSON.stringify(args)}`));
    socket.on(event, fail);
    setTimeout(() => { socket.off(event, fail); resolve(); }, ms);
  });
}

function equal(actual, expected, what) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

async function connected(socket) {
  const auth = once(socket, "auth");
  await within(once(socket, "connect"), "connect");
  return (await within(auth, "auth event"))[0];
}

const checks = {
  async "connect with auth"() {
    const socket = client("/", { auth: { token: "abc" } });
    equal(await connected(socket), { token: "abc" }, "auth echoed");
    if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") {
      await within(once(socket.io.engine, "upgrade"), "upgrade");
    }
    const expected = mode === "polling" ? "polling" : "websocket";
    equal(socket.io.engine.transport.name, expected, "transport");
    socket.disconnect();
  },

  async "event round trip"() {
    const socket = client();
    await connected(socket);
    const back = once(socket, "message-back");
    socket.emit("message", 1, "2", { 3: [true] });
    equal(await within(back, "message-back"), [1, "2", { 3: [true] }], "message-back");
    socket.disconnect();
  },

  async "ack"() {
    const socket = client();
    await connected(socket);
    equal(await within(ack(socket, "message-with-ack", 1, "2", { 3: [false] }), "ack"), [1, "2", { 3: [false] }], "ack");
    equal(await within(socket.timeout(2000).emitWithAck("message-with-ack", "x"), "emitWithAck"), "x", "emitWithAck");
    socket.disconnect();
  },

  async "binary ack"() {
    const socket = client();
    await connected(socket);
    const [first, second] = await within(ack(socket, "message-with-ack", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) }), "binary ack");
    equal([...first], [1, 2, 3], "first attachment");
    equal([...second.nested], [4], "nested attachment");
    socket.disconnect();
  },

  async "room broadcast reaches members only"() {
    const member = client(), outsider = client(), sender = client();
    await Promise.all([connected(member), connected(outsider), connected(sender)]);
    equal(await within(ack(member, "join", "room-1"), "join"), ["room-1"], "join ack");
    const got = once(member, "room-message");
    const quiet = silence(outsider, "room-message");
    equal(await within(ack(sender, "to-room", "room-1", { hello: "room" }), "to-room"), ["room-1"], "to-room ack");
    equal((await within(got, "room-message"))[0], { hello: "room" }, "room-message");
    await quiet;
    equal(await within(ack(member, "leave", "room-1"), "leave"), ["room-1"], "leave ack");
    const quietNow = silence(member, "room-message");
    await ack(sender, "to-room", "room-1", "after leaving");
    await quietNow;
    [member, outsider, sender].forEach((s) => s.disconnect());
  },

  async "second namespace on the same connection, isolated, left and rejoined"() {
    const main = client();
    await connected(main);
    // a second namespace on the same Manager shares its Engine.IO connection
    const ns = main.io.socket("/custom");
    opened.push(ns);
    equal(await connected(ns), {}, "custom auth");
    equal(ns.io.engine.id, main.io.engine.id, "one Engine.IO session");
    await ack(main, "join", "same-name");
    const quiet = silence(main, "room-message");
    const got = once(ns, "room-message");
    await ack(ns, "join", "same-name");
    await ack(ns, "to-room", "same-name", "custom only");
    equal((await within(got, "room-message"))[0], "custom only", "custom room-message");
    await quiet;
    ns.disconnect();
    const back = once(main, "message-back");
    main.emit("message", "main still works");
    equal(await within(back, "message-back"), ["main still works"], "main after leaving custom");
    ns.connect();
    equal(await connected(ns), {}, "rejoined custom");
    main.disconnect(); ns.disconnect();
  },

  async "reconnection after the transport is dropped"() {
    const socket = client();
    await connected(socket);
    const firstId = socket.io.engine.id;
    const gone = once(socket, "disconnect");
    const again = once(socket, "auth");
    socket.io.engine.close();
    equal((await within(gone, "disconnect"))[0], "transport close", "disconnect reason");
    await within(again, "reconnect");
    if (socket.io.engine.id === firstId) throw new Error("same Engine.IO session after reconnecting");
    const back = once(socket, "message-back");
    socket.emit("message", "after reconnecting");
    equal(await within(back, "message-back"), ["after reconnecting"], "message after reconnecting");
    socket.disconnect();
  },

  async "recovery of missed events once each in order"() {
    const away = client("/recovery"), sender = client("/recovery");
    await Promise.all([connected(away), connected(sender)]);
    const received = [];
    away.on("room-message", (payload) => received.push(payload));
    await ack(away, "join", "news");
    await ack(sender, "to-room", "news", "before");
    await within(new Promise((resolve) => { const t = setInterval(() => { if (received.length) { clearInterval(t); resolve(); } }, 10); }), "first room-message");
    const gone = once(away, "disconnect");
    away.io.engine.close();
    await within(gone, "disconnect");
    for (const n of [1, 2, 3]) await ack(sender, "to-room", "news", `missed ${n}`);
    await within(once(away, "connect"), "reconnect");
    if (!away.recovered) throw new Error("socket.recovered is false");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await ack(sender, "to-room", "news", "live");
    await new Promise((resolve) => setTimeout(resolve, 200));
    equal(received, ["before", "missed 1", "missed 2", "missed 3", "live"], "received");
    away.disconnect(); sender.disconnect();
  },
};

(async () => {
  let failed = 0;
  for (const [name, check] of Object.entries(checks)) {
    try {
      await check();
      console.log(JSON.stringify({ check: name, ok: true }));
    } catch (error) {
      failed += 1;
      console.log(JSON.stringify({ check: name, ok: false, detail: String(error && error.stack || error) }));
    }
    opened.splice(0).forEach((s) => s.disconnect());
  }
  process.exit(failed ? 1 : 0);
})();
