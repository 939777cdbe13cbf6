// The checks socket.io-client runs against examples/socketio_test_server.py, in Node
// (sio_client.js) and in Chromium (test_chromium.py loads this file in a page).
// runChecks({io, url, mode}) -> [{check, ok, detail}]; MODE: polling | websocket | upgrade.
(function (root) {
"use strict";
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
let env;
const STEP_MS = 4000;
const opened = [];

function client(nsp = "/", extra = {}) {
  const socket = env.io(env.url + nsp, {
    transports: TRANSPORTS[env.mode],
    upgrade: env.mode === "upgrade",
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

function untilCount(list, count) {
  return new Promise((resolve) => {
    const timer = setInterval(() => { if (list.length >= count) { clearInterval(timer); resolve(); } }, 10);
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

// Binary data arrives as a Buffer in Node and an ArrayBuffer in a browser.
function bytes(data) {
  return Array.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
}

const checks = {
  async "connect with auth"() {
    const socket = client("/", { auth: { token: "abc" } });
    equal(await connected(socket), { token: "abc" }, "auth echoed");
    if (env.mode === "upgrade" && socket.io.engine.transport.name !== "websocket") {
      await within(once(socket.io.engine, "upgrade"), "upgrade");
    }
    const expected = env.mode === "polling" ? "polling" : "websocket";
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
    const [first, second] = await within(ack(socket, "message-with-ack", new Uint8Array([1, 2, 3]), { nested: new Uint8Array([4]) }), "binary ack");
    equal(bytes(first), [1, 2, 3], "first attachment");
    equal(bytes(second.nested), [4], "nested attachment");
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
    // what a network failure does to the client: its transport goes, it was not asked to leave
    socket.io.engine.close();
    equal((await within(gone, "disconnect"))[0], "forced close", "disconnect reason");
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
    await within(untilCount(received, 1), "first room-message");
    const gone = once(away, "disconnect");
    away.io.engine.close();
    await within(gone, "disconnect");
    for (const n of [1, 2, 3]) await ack(sender, "to-room", "news", `missed ${n}`);
    await within(once(away, "connect"), "reconnect");
    if (!away.recovered) throw new Error("socket.recovered is false");
    await ack(sender, "to-room", "news", "live");
    await within(untilCount(received, 5), "five room-messages");
    await new Promise((resolve) => setTimeout(resolve, 200)); // nothing doubled comes late
    equal(received, ["before", "missed 1", "missed 2", "missed 3", "live"], "received");
    away.disconnect(); sender.disconnect();
  },
};

async function runChecks(options) {
  env = options;
  const results = [];
  for (const [name, check] of Object.entries(checks)) {
    try {
      await check();
      results.push({ check: name, ok: true });
    } catch (error) {
      results.push({ check: name, ok: false, detail: String((error && error.stack) || error) });
    }
    opened.splice(0).forEach((s) => s.disconnect());
  }
  return results;
}

if (typeof module !== "undefined" && module.exports) module.exports = { runChecks, TRANSPORTS };
else root.sioChecks = { runChecks, TRANSPORTS };
})(typeof globalThis !== "undefined" ? globalThis : this);
