// The chat page: one state, two kinds of link (Socket.IO, SockJS), the same events on both.
// Every name and message is put in the page as text (textContent), never as HTML.
"use strict";

const BASE = new URL(".", location.href);
const TRANSPORTS = {
  "websocket": { label: "WebSocket (Socket.IO)", kind: "socket.io", names: ["websocket"] },
  "polling": { label: "Long-polling (Socket.IO)", kind: "socket.io", names: ["polling"] },
  "xhr-streaming": { label: "XHR streaming (SockJS)", kind: "sockjs", names: ["xhr-streaming"] },
  "iframe-htmlfile": { label: "htmlfile in an iframe (SockJS)", kind: "sockjs",
                       names: ["iframe-htmlfile"] },
  "eventsource": { label: "EventSource (SockJS)", kind: "sockjs", names: ["eventsource"] },
  "xhr-polling": { label: "XHR polling (SockJS)", kind: "sockjs", names: ["xhr-polling"] },
  "sockjs-websocket": { label: "WebSocket (SockJS)", kind: "sockjs", names: ["websocket"] },
};
const ACK_TIMEOUT_MS = 10000;
const TYPING_SHOWN_MS = 4000;
const TYPING_EVERY_MS = 1500;
const TYPING_IDLE_MS = 3000;
const RECEIPT_DELAY_MS = 250;
const MESSAGES_KEPT = 500;

const $ = (id) => document.getElementById(id);
const randomId = () => Array.from(crypto.getRandomValues(new Uint8Array(12)),
                                  (b) => b.toString(16).padStart(2, "0")).join("");

// What the page knows; the tests read it too.
const chat = window.chat = {
  nick: null,
  mode: null,             // a key of TRANSPORTS
  tab: sessionStorage.getItem("chat.tab") || randomId(),
  status: "offline",      // offline, connecting, online, kicked
  transport: null,        // what carries the link now, e.g. "socket.io websocket"
  member: null,           // this connection's id in the hub
  epoch: null,            // the server's; another one means the server restarted
  lastOffset: null,       // of the last recorded message received
  recoveries: 0,          // reconnections that got every missed message
  hellos: 0,              // successful hellos (1 + reconnections)
  rooms: new Map(),       // name -> room (see newRoom)
  current: null,
  known: [],
  link: null,
  kickedFor: null,        // why the server disconnected this tab (a flood)
  ready: false,           // hello answered on the current connection
  outbox: [],             // my messages not yet acknowledged, oldest first
};
sessionStorage.setItem("chat.tab", chat.tab);

// --- links: Socket.IO and SockJS behind one interface -------------------------------------
// on.open(), on.close(text, isFinal), on.event(name, payload, offset), on.transport(name)

class SocketIOLink {
  constructor(mode, on) {
    this.on = on;
    this.socket = io("/chat", {
      path: BASE.pathname + "socket.io/",
      transports: mode.names,
      upgrade: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      timeout: 5000,
    });
    this.socket.on("connect", () => {
      on.transport("socket.io " + this.socket.io.engine.transport.name);
      on.open();
    });
    this.socket.on("disconnect", (reason) => on.close(reason, reason === "io server disconnect"));
    this.socket.on("connect_error", (error) => on.close(error.message, false));
    this.socket.onAny((event, payload, offset) =>
      on.event(event, payload, typeof offset === "string" ? offset : null));
  }
  get isOpen() { return this.socket.connected; }
  request(event, payload) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (error, answer) =>
        error ? reject(error) : resolve(answer));
    });
  }
  send(event, payload) { if (this.socket.connected) this.socket.emit(event, payload); }
  reconnect() { this.socket.connect(); }
  close() { this.socket.close(); }
}

class SockJSLink {
  constructor(mode, on) {
    this.mode = mode;
    this.on = on;
    this.acks = new Map();
    this.nextAck = 1;
    this.attempt = 0;
    this.isStopped = false;
    this.open();
  }
  open() {
    const sock = this.sock = new SockJS(new URL("sockjs", BASE).href, null,
                                        { transports: this.mode.names });
    sock.onopen = () => {
      this.attempt = 0;
      this.on.transport("sockjs " + sock.transport);
      this.on.open();
    };
    sock.onmessage = (event) => {
      const packet = JSON.parse(event.data);
      if ("ack" in packet) {
        const pending = this.acks.get(packet.ack);
        if (pending) pending.resolve(packet.args[0]);
      } else {
        this.on.event(packet.event, packet.args[0], packet.offset ?? null);
      }
    };
    sock.onclose = (event) => {
      if (sock !== this.sock) return;
      for (const pending of this.acks.values()) pending.reject(new Error("closed"));
      this.acks.clear();
      const isKicked = event.code === 4008;
      this.on.close(`closed (${event.code}${event.reason ? " " + event.reason : ""})`, isKicked);
      if (!isKicked && !this.isStopped) {
        // SockJS has no reconnection of its own: back off, up to 3 s.
        const delay = Math.min(3000, 300 * 2 ** this.attempt++);
        setTimeout(() => { if (!this.isStopped && sock === this.sock) this.open(); }, delay);
      }
    };
  }
  get isOpen() { return this.sock.readyState === SockJS.OPEN; }
  request(event, payload) {
    const id = this.nextAck++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.acks.delete(id); reject(new Error("timeout")); },
                               ACK_TIMEOUT_MS);
      const settle = (f) => (value) => { clearTimeout(timer); this.acks.delete(id); f(value); };
      this.acks.set(id, { resolve: settle(resolve), reject: settle(reject) });
      if (this.isOpen) this.sock.send(JSON.stringify({ event, args: [payload], ack: id }));
      else this.acks.get(id).reject(new Error("not connected"));
    });
  }
  send(event, payload) {
    if (this.isOpen) this.sock.send(JSON.stringify({ event, args: [payload] }));
  }
  reconnect() { this.attempt = 0; this.open(); }
  close() { this.isStopped = true; this.sock.close(); }
}

// --- connecting ---------------------------------------------------------------------------

// Events that arrive while a snapshot (hello, join) is on its way wait, then go in order.
let holding = 0;
let held = [];

function connect() {
  if (chat.link) chat.link.close();
  const mode = TRANSPORTS[chat.mode];
  const Link = mode.kind === "socket.io" ? SocketIOLink : SockJSLink;
  setStatus("connecting");
  chat.transport = null;
  // A link replaced by another one (a new transport) may still report its end: ignore it.
  let link = null;
  const ifCurrent = (f) => (...args) => { if (chat.link === link) f(...args); };
  link = chat.link = new Link(mode, {
    open: ifCurrent(() => hello()),
    close: ifCurrent((text, isFinal) => {
      chat.ready = false;
      setStatus(isFinal ? "kicked" : "connecting", text);
    }),
    event: ifCurrent((name, payload, offset) => {
      if (holding) held.push([name, payload, offset]);
      else dispatch(name, payload, offset);
    }),
    transport: ifCurrent((name) => { chat.transport = name; showStatus(); }),
  });
}

// Ask for a snapshot (hello, join) and apply it with ``apply``; the events that arrived
// meanwhile go after it, in order (those the snapshot holds already are recognized by id).
async function snapshot(event, payload, apply) {
  holding++;
  let answer;
  try {
    answer = await chat.link.request(event, payload);
    apply(answer);
  } finally {
    holding--;
    if (!holding) {
      const events = held;
      held = [];
      for (const args of events) dispatch(...args);
    }
  }
  return answer;
}

async function hello() {
  const link = chat.link;
  const resume = chat.epoch && chat.lastOffset ? { epoch: chat.epoch, offset: chat.lastOffset }
                                               : null;
  const payload = { nick: chat.nick, tab: chat.tab, rooms: [...chat.rooms.keys()], resume };
  try {
    await snapshot("hello", payload, (answer) => { if (link === chat.link) welcome(answer); });
  } catch (error) {
    return; // the connection dropped; the next one says hello again
  }
  if (chat.ready) pump();
}

function welcome(answer) {
  if (answer.error) { showNotice(answer.error); return; }
  const restarted = chat.epoch !== null && chat.epoch !== answer.epoch;
  chat.epoch = answer.epoch;
  chat.member = answer.member;
  chat.limits = answer.limits;
  chat.known = answer.known;
  $("text").maxLength = answer.limits.max_message_chars;
  const refusals = Object.entries(answer.refused).map(([name, why]) => {
    chat.rooms.delete(name);
    return `#${name}: ${why}`;
  });
  if (!chat.rooms.has(chat.current)) chat.current = chat.rooms.keys().next().value ?? null;
  for (const [name, state] of Object.entries(answer.rooms)) {
    const room = roomNamed(name);
    room.members = new Map(state.members.map((m) => [m.member, m]));
    room.typing.clear();
    if (state.backlog) addBacklog(room, state.backlog);
    if (restarted) addNotice(room, "The server restarted: earlier messages are only on this screen.");
    else if (chat.hellos && !answer.recovered) addNotice(room, "Back online; some messages may be missing.");
  }
  if (answer.recovered) {
    chat.recoveries++;
    for (const message of answer.missed) addMessage(message, true);
    const count = answer.missed.length;
    const room = chat.rooms.get(chat.current);
    if (room) addNotice(room, `Back online: ${count} missed message${count === 1 ? "" : "s"}.`);
  }
  chat.hellos++;
  chat.ready = true;
  setStatus("online");
  if (refusals.length) showNotice(refusals.join("; "));
  showKnown();
  showRooms();
  showRoom();
}

// --- what the server sends ----------------------------------------------------------------

function dispatch(name, payload, offset) {
  if (name === "message") addMessage({ ...payload, offset }, true);
  else if (name === "presence") onPresence(payload);
  else if (name === "typing") onTyping(payload);
  else if (name === "delivered") onDelivered(payload);
  else if (name === "kicked") chat.kickedFor = payload.reason;
}

function newRoom(name) {
  return { name, messages: [], ids: new Set(), members: new Map(), typing: new Map(), unread: 0 };
}

function roomNamed(name) {
  let room = chat.rooms.get(name);
  if (!room) chat.rooms.set(name, room = newRoom(name));
  return room;
}

function laterOffset(a, b) {
  // Offsets are the backend's; numeric ones (the memory backend's, Redis stream ids) compare
  // part by part.
  if (a === null) return b;
  const pa = a.split("-").map(BigInt), pb = b.split("-").map(BigInt);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0n, y = pb[i] ?? 0n;
    if (x !== y) return x > y ? a : b;
  }
  return a;
}

function noteOffset(offset) {
  if (typeof offset !== "string" || !/^\d+(-\d+)?$/.test(offset)) return;
  chat.lastOffset = laterOffset(chat.lastOffset, offset);
}

function addMessage(message, isLive) {
  noteOffset(message.offset);
  const room = chat.rooms.get(message.room);
  if (!room || room.ids.has(message.id)) return; // a room left since, or seen already
  room.ids.add(message.id);
  if (message.tab === chat.tab) {
    const mine = room.messages.find((item) => item.mine && item.cid === message.cid);
    if (mine) {
      mine.id = message.id;
      mine.ts = message.ts;
      if (mine.status === "pending") mine.status = "sent";
      render(mine);
      return;
    }
  } else if (isLive) {
    receipt(message.tab, message.id);
    if (room.name !== chat.current || document.hidden) room.unread++;
  }
  append(room, { kind: "message", mine: message.tab === chat.tab, status: "sent",
                 deliveredTo: new Set(), ...message });
  if (room.name !== chat.current) showRooms();
}

function addBacklog(room, backlog) {
  for (const message of backlog) addMessage(message, false);
}

function addNotice(room, text) {
  append(room, { kind: "notice", text, ts: Date.now() });
}

function append(room, item) {
  room.messages.push(item);
  if (room.messages.length > MESSAGES_KEPT) {
    const gone = room.messages.shift();
    if (gone.el) gone.el.remove();
  }
  render(item);
  if (room.name === chat.current) {
    const list = $("messages");
    const isAtEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.append(item.el);
    if (isAtEnd || item.mine) list.scrollTop = list.scrollHeight;
  }
}

function onPresence(change) {
  const room = chat.rooms.get(change.room);
  if (!room) return;
  const was = room.members.has(change.member);
  if (change.joined && !was) {
    room.members.set(change.member, change);
    addNotice(room, `${change.nick} joined (${change.transport})`);
  } else if (!change.joined && was) {
    room.members.delete(change.member);
    room.typing.delete(change.member);
    addNotice(room, `${change.nick} left`);
  }
  if (room.name === chat.current) { showMembers(); showTyping(); }
}

function onTyping(notice) {
  const room = chat.rooms.get(notice.room);
  if (!room) return;
  if (notice.typing) room.typing.set(notice.member, { nick: notice.nick, until: Date.now() + TYPING_SHOWN_MS });
  else room.typing.delete(notice.member);
  if (room.name === chat.current) showTyping();
}

function onDelivered(receipt) {
  const ids = new Set(receipt.ids);
  for (const room of chat.rooms.values()) {
    for (const item of room.messages) {
      if (item.mine && ids.has(item.id)) {
        item.status = "delivered";
        item.deliveredTo.add(receipt.by);
        render(item);
      }
    }
  }
}

// Receipts wait a moment, to go many ids at a time.
const receipts = new Map();
let receiptTimer = null;
function receipt(tab, id) {
  if (!receipts.has(tab)) receipts.set(tab, []);
  receipts.get(tab).push(id);
  if (!receiptTimer) {
    receiptTimer = setTimeout(() => {
      receiptTimer = null;
      for (const [to, ids] of receipts) chat.link.send("delivered", { tab: to, ids });
      receipts.clear();
    }, RECEIPT_DELAY_MS);
  }
}

// --- what this tab sends ------------------------------------------------------------------

function say(text) {
  const room = chat.rooms.get(chat.current);
  if (!room) return;
  const item = { kind: "message", mine: true, cid: randomId(), room: room.name, nick: chat.nick,
                 text, ts: Date.now(), status: "pending", deliveredTo: new Set() };
  append(room, item);
  chat.outbox.push(item);
  pump();
}

// One message at a time, in order; after a reconnection, those not acknowledged go again
// (the server knows their ids and does not send one twice).
let isPumping = false;
async function pump() {
  if (isPumping) return;
  isPumping = true;
  try {
    while (chat.outbox.length && chat.ready) {
      const item = chat.outbox[0];
      let answer;
      try {
        answer = await chat.link.request("say", { room: item.room, text: item.text, cid: item.cid });
      } catch (error) {
        // The answer was lost with a connection that is gone: ask the new one (the server
        // answers a message id it knows without sending it again). Not connected: hello()
        // pumps again.
        if (chat.ready && chat.link.isOpen) continue;
        break;
      }
      chat.outbox.shift();
      if (answer.error) {
        item.status = "failed";
        item.error = answer.error;
      } else {
        item.id = answer.id;
        item.ts = answer.ts;
        chat.rooms.get(item.room)?.ids.add(answer.id);
        if (item.status === "pending") item.status = "sent";
      }
      render(item);
    }
  } finally {
    isPumping = false;
  }
}

let typingSentAt = 0;
let typingStop = null;
function typed() {
  const room = chat.current;
  if (!chat.ready || !room) return;
  if ($("text").value && Date.now() - typingSentAt > TYPING_EVERY_MS) {
    typingSentAt = Date.now();
    chat.link.send("typing", { room, typing: true });
  }
  clearTimeout(typingStop);
  typingStop = setTimeout(stopTyping, TYPING_IDLE_MS);
}
function stopTyping() {
  clearTimeout(typingStop);
  if (typingSentAt && chat.ready && chat.current) {
    chat.link.send("typing", { room: chat.current, typing: false });
  }
  typingSentAt = 0;
}

async function join(name) {
  name = name.trim().toLowerCase();
  if (!name) return;
  if (chat.rooms.has(name)) { switchTo(name); return; }
  if (!chat.ready) { showNotice("not connected"); return; }
  let answer;
  try {
    answer = await snapshot("join", { room: name }, (answer) => {
      if (answer.error) return;
      const room = roomNamed(answer.room);
      room.members = new Map(answer.members.map((m) => [m.member, m]));
      chat.known = answer.known;
      addBacklog(room, answer.backlog);
    });
  } catch (error) {
    showNotice("not connected");
    return;
  }
  if (answer.error) { showNotice(answer.error); return; }
  saveRooms();
  showKnown();
  switchTo(answer.room);
}

async function leave() {
  const name = chat.current;
  if (!name || chat.rooms.size === 1) { showNotice("this is your last room"); return; }
  stopTyping();
  chat.rooms.delete(name);
  saveRooms();
  switchTo(chat.rooms.keys().next().value);
  if (chat.ready) chat.link.send("leave", { room: name });
}

function saveRooms() {
  localStorage.setItem("chat.rooms", JSON.stringify([...chat.rooms.keys()]));
}

// --- showing it ---------------------------------------------------------------------------

const TICKS = { pending: "◷", sent: "✓", delivered: "✓✓", failed: "✗" };

function render(item) {
  if (!item.el) {
    const el = item.el = document.createElement("li");
    if (item.kind === "notice") {
      el.className = "notice-line";
      el.textContent = item.text;
      return;
    }
    el.className = "msg" + (item.mine ? " mine" : "");
    const head = el.appendChild(document.createElement("div"));
    head.className = "head";
    head.appendChild(document.createElement("span")).className = "nick";
    head.appendChild(document.createElement("time")).className = "time";
    el.appendChild(document.createElement("div")).className = "text";
    head.appendChild(document.createElement("span")).className = "ticks";
  }
  if (item.kind === "notice") return;
  const el = item.el;
  el.dataset.cid = item.cid ?? "";
  el.dataset.id = item.id ?? "";
  el.dataset.status = item.mine ? item.status : "";
  el.querySelector(".nick").textContent = item.nick;
  const time = new Date(item.ts);
  const clock = el.querySelector(".time");
  clock.dateTime = time.toISOString();
  clock.textContent = time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  el.querySelector(".text").textContent = item.text;
  const ticks = el.querySelector(".ticks");
  ticks.textContent = item.mine ? TICKS[item.status] : "";
  ticks.title = item.status === "delivered" ? "delivered to " + [...item.deliveredTo].join(", ")
              : item.status === "failed" ? item.error : item.mine ? item.status : "";
}

function switchTo(name) {
  stopTyping();
  chat.current = name;
  const room = chat.rooms.get(name);
  if (room) room.unread = 0;
  showRooms();
  showRoom();
}

function showRoom() {
  const room = chat.rooms.get(chat.current);
  $("room-title").textContent = room ? "# " + room.name : "";
  const list = $("messages");
  list.replaceChildren(...(room ? room.messages.map((item) => item.el) : []));
  list.scrollTop = list.scrollHeight;
  showMembers();
  showTyping();
}

function showRooms() {
  const items = [...chat.rooms.values()].map((room) => {
    const li = document.createElement("li");
    li.dataset.room = room.name;
    if (room.name === chat.current) li.className = "current";
    const button = li.appendChild(document.createElement("button"));
    button.type = "button";
    button.appendChild(document.createElement("span")).textContent = "# " + room.name;
    button.appendChild(document.createElement("span")).className = "unread";
    button.lastChild.textContent = room.unread ? String(room.unread) : "";
    button.onclick = () => switchTo(room.name);
    return li;
  });
  $("room-list").replaceChildren(...items);
}

function showKnown() {
  $("known-rooms").replaceChildren(...chat.known.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    return option;
  }));
}

function showMembers() {
  const room = chat.rooms.get(chat.current);
  const members = room ? [...room.members.values()] : [];
  members.sort((a, b) => a.nick.localeCompare(b.nick));
  $("member-count").textContent = `(${members.length})`;
  $("members").replaceChildren(...members.map((member) => {
    const li = document.createElement("li");
    li.dataset.member = member.member;
    li.appendChild(document.createElement("span")).className = "who";
    li.firstChild.textContent = member.nick + (member.member === chat.member ? " (you)" : "");
    li.appendChild(document.createElement("span")).className = "how";
    li.lastChild.textContent = member.transport;
    return li;
  }));
}

function typingNames(room) {
  const now = Date.now();
  for (const [member, entry] of room.typing) if (entry.until < now) room.typing.delete(member);
  return [...room.typing.values()].map((entry) => entry.nick);
}

function showTyping() {
  const room = chat.rooms.get(chat.current);
  const names = room ? typingNames(room) : [];
  $("typing").textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
    : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}
setInterval(showTyping, 1000);

function setStatus(status, detail) {
  chat.status = status;
  showStatus(detail);
}

function showStatus(detail) {
  $("status").dataset.state = chat.status;
  $("status-text").textContent = chat.status === "kicked" ? "disconnected" : chat.status;
  $("status").title = detail || "";
  $("transport").textContent = chat.transport || TRANSPORTS[chat.mode]?.label || "-";
  $("reconnect").hidden = chat.status !== "kicked";
  if (chat.status === "kicked") {
    showNotice("Disconnected by the server: " + (chat.kickedFor || detail || ""));
  } else if (chat.status === "online") {
    chat.kickedFor = null;
    showNotice("");
  }
}

function showNotice(text) { $("notice").textContent = text; }

// --- the page -----------------------------------------------------------------------------

function fillTransports(select) {
  select.replaceChildren(...Object.entries(TRANSPORTS).map(([key, mode]) => {
    const option = document.createElement("option");
    option.value = key;
    option.textContent = mode.label;
    return option;
  }));
}

function chooseTransport(mode) {
  chat.mode = mode;
  $("transport-select").value = mode;
  $("login-transport").value = mode;
  const url = new URL(location.href);
  url.searchParams.set("transport", mode);
  history.replaceState(null, "", url);
}

function start() {
  fillTransports($("transport-select"));
  fillTransports($("login-transport"));
  const asked = new URL(location.href).searchParams.get("transport");
  chooseTransport(asked in TRANSPORTS ? asked : localStorage.getItem("chat.transport") in TRANSPORTS
                  ? localStorage.getItem("chat.transport") : "websocket");
  $("nick").value = localStorage.getItem("chat.nick") || "";
  $("login").onsubmit = (event) => {
    event.preventDefault();
    const nick = $("nick").value.trim();
    if (!nick) return;
    chat.nick = nick;
    localStorage.setItem("chat.nick", nick);
    chooseTransport($("login-transport").value);
    localStorage.setItem("chat.transport", chat.mode);
    let rooms = [];
    try { rooms = JSON.parse(localStorage.getItem("chat.rooms") || "[]"); } catch (error) {}
    if (!Array.isArray(rooms) || !rooms.length) rooms = ["lobby"];
    for (const name of rooms) roomNamed(String(name));
    chat.current = chat.rooms.keys().next().value;
    $("me").textContent = nick;
    $("login").hidden = true;
    $("app").hidden = false;
    showRooms();
    showRoom();
    connect();
    $("text").focus();
  };
  $("transport-select").onchange = () => {
    chooseTransport($("transport-select").value);
    localStorage.setItem("chat.transport", chat.mode);
    if (chat.nick) connect();
  };
  $("composer").onsubmit = (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    stopTyping();
    say(text);
  };
  $("text").oninput = typed;
  $("join-form").onsubmit = (event) => {
    event.preventDefault();
    join($("join-room").value);
    $("join-room").value = "";
  };
  $("leave").onclick = leave;
  $("reconnect").onclick = () => { setStatus("connecting"); chat.link.reconnect(); };
  document.addEventListener("visibilitychange", () => {
    const room = chat.rooms.get(chat.current);
    if (!document.hidden && room) { room.unread = 0; showRooms(); }
  });
}

start();
