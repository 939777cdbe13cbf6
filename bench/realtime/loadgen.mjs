// The load generator of bench/realtime/run.py: many Socket.IO v5 clients in one Node process.
//
// No socket.io-client: each client speaks the few Engine.IO v4 / Socket.IO v5 text packets the
// benchmark needs over a `ws` WebSocket (echo), over WebSocket frames it reads itself off a raw
// TCP socket (fan-out), or over HTTP long-polling on two keep-alive TCP connections with a
// minimal HTTP/1.1 client, so that 10,000 clients fit in one process and the load side stays
// cheaper than the servers it measures.
//
//   node loadgen.mjs --port P --mode echo --transport websocket|polling --clients 100
//                    [--size 32] [--warmup 1] [--duration 3]
//   node loadgen.mjs --port P --mode fanout --clients 10000 [--broadcasts 10]
//
// Prints JSON lines: {"event":"connected",...}; in fanout mode it then waits for a line on stdin
// (the harness reads the server's memory meanwhile); {"event":"measure_start"},
// {"event":"measure_end"}, {"event":"result",...}. Every wait is bounded.
import crypto from "node:crypto";
import net from "node:net";
import readline from "node:readline";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const require = createRequire(import.meta.url);
// bench/realtime/node_modules (npm ci), else the test suite's copy (the smoke test).
let WebSocket;
try {
  WebSocket = require("ws");
} catch {
  WebSocket = require("../../tests/node_modules/ws");
}

const options = {
  port: 0,
  mode: "echo",
  transport: "websocket",
  clients: 100,
  size: 32,
  warmup: 1,
  duration: 3,
  broadcasts: 10,
  pause: 0.2,
  batch: 200,
  timeout: 10,
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "");
  if (!(key in options)) throw new Error(`unknown option ${process.argv[i]}`);
  const value = process.argv[i + 1];
  options[key] = typeof options[key] === "number" ? Number(value) : value;
}
const PATH = "/socket.io/?EIO=4&transport=";
const SEPARATOR = "\x1e"; // between packets of one long-polling payload (Engine.IO v4)
let errors = 0;
let firstError = null;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function fail(message) {
  errors += 1;
  if (firstError === null) firstError = String(message);
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

function withTimeout(promise, seconds, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// --- one client: Socket.IO packets over a transport ------------------------------------------

class Client {
  constructor() {
    this.onEvent = null; // (text) => void, for "42..." packets
    this.onAck = null; // (text) => void, for "43..." packets
    this.connected = new Promise((resolve, reject) => {
      this.resolveConnected = resolve;
      this.rejectConnected = reject;
    });
  }

  // One Engine.IO packet (a string) from the server.
  receive(packet) {
    const type = packet.charCodeAt(0);
    if (type === 52 /* 4: message */) {
      const sioType = packet.charCodeAt(1);
      if (sioType === 50 /* 2: EVENT */) this.onEvent?.(packet);
      else if (sioType === 51 /* 3: ACK */) this.onAck?.(packet);
      else if (sioType === 48 /* 0: CONNECT */) this.resolveConnected();
      else this.rejectConnected(new Error(`unexpected packet ${packet.slice(0, 80)}`));
    } else if (type === 50 /* 2: ping */) {
      this.send("3");
    } else if (type === 48 /* 0: open */) {
      this.send("40"); // CONNECT to namespace "/"
    } else if (type === 49 /* 1: close */) {
      this.closed("the server closed the session");
    }
  }

  closed(reason) {
    this.rejectConnected(new Error(reason));
    if (!this.closing) fail(reason);
  }
}

class WebSocketClient extends Client {
  open() {
    this.ws = new WebSocket(`ws://127.0.0.1:${options.port}${PATH}websocket`, {
      perMessageDeflate: false,
    });
    this.ws.on("message", (data) => this.receive(data.toString()));
    this.ws.on("error", (error) => this.closed(error.message));
    this.ws.on("close", () => this.closed("the WebSocket closed"));
    return this.connected;
  }

  send(packet) {
    this.ws.send(packet);
  }

  close() {
    this.closing = true;
    this.ws.terminate();
  }
}

const maskPool = Buffer.alloc(8192);
let maskAt = maskPool.length;

// The fan-out's WebSocket client: RFC 6455 framing over a raw TCP socket, without `ws`'s
// streams, so that reading 10,000 broadcasts costs the load generator as little as possible
// (the latencies include that time). Server frames are unmasked; this reads single-frame text
// messages, which is all the benchmark's servers send it.
class RawWebSocketClient extends Client {
  open() {
    this.socket = net.connect(options.port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.buffer = null;
    this.upgraded = false;
    const key = crypto.randomBytes(16).toString("base64");
    this.socket.write(
      `GET ${PATH}websocket HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\n` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    this.socket.on("data", (chunk) => this.data(chunk));
    this.socket.on("error", (error) => this.closed(error.message));
    this.socket.on("close", () => this.closed("the WebSocket closed"));
    return this.connected;
  }

  data(chunk) {
    let buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    if (!this.upgraded) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        this.buffer = buffer;
        return;
      }
      if (!buffer.toString("latin1", 0, 12).endsWith("101")) {
        this.closed(`upgrade refused: ${buffer.toString("latin1", 0, 80)}`);
        return;
      }
      this.upgraded = true;
      buffer = buffer.subarray(end + 4);
    }
    let at = 0;
    while (buffer.length - at >= 2) {
      const opcode = buffer[at] & 0x0f;
      let length = buffer[at + 1] & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (buffer.length - at < 4) break;
        length = buffer.readUInt16BE(at + 2);
        start = at + 4;
      } else if (length === 127) {
        if (buffer.length - at < 10) break;
        length = Number(buffer.readBigUInt64BE(at + 2));
        start = at + 10;
      }
      if (buffer.length < start + length) break;
      if (opcode === 1) this.receive(buffer.toString("utf8", start, start + length));
      else if (opcode === 9) this.frame(0x8a, buffer.subarray(start, start + length)); // pong
      else if (opcode === 8) this.closed("the server closed the WebSocket");
      at = start + length;
    }
    this.buffer = at === buffer.length ? null : buffer.subarray(at);
  }

  send(packet) {
    this.frame(0x81, Buffer.from(packet)); // FIN, text
  }

  frame(first, payload) {
    const length = payload.length;
    const header = length < 126 ? 2 : 4;
    const frame = Buffer.allocUnsafe(header + 4 + length);
    frame[0] = first;
    if (length < 126) {
      frame[1] = 0x80 | length;
    } else {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    }
    // RFC 6455 §5.3: clients mask every frame, with a fresh random key; the keys are taken
    // from a pool of random bytes (as ws does) rather than one crypto call per frame.
    if (maskAt + 4 > maskPool.length) {
      crypto.randomFillSync(maskPool);
      maskAt = 0;
    }
    const keyAt = header;
    maskPool.copy(frame, keyAt, maskAt, maskAt + 4);
    maskAt += 4;
    for (let i = 0; i < length; i++) frame[keyAt + 4 + i] = payload[i] ^ frame[keyAt + (i & 3)];
    this.socket.write(frame);
  }

  close() {
    this.closing = true;
    this.socket.destroy();
  }
}

// HTTP/1.1 over one TCP connection: one request at a time, Content-Length or chunked bodies.
class HTTPConnection {
  constructor() {
    this.socket = net.connect(options.port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.buffer = "";
    this.pending = null; // {resolve, reject}
    this.socket.setEncoding("latin1");
    this.socket.on("data", (chunk) => {
      this.buffer += chunk;
      this.parse();
    });
    const broken = (error) => {
      this.pending?.reject(error ?? new Error("the HTTP connection closed"));
      this.pending = null;
    };
    this.socket.on("error", broken);
    this.socket.on("close", () => broken(null));
  }

  request(method, target, body = "") {
    const length = Buffer.byteLength(body);
    const head =
      `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\n` +
      (method === "POST" ? `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${length}\r\n` : "") +
      "\r\n";
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(head + body, "utf8");
    });
  }

  parse() {
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0 || this.pending === null) return;
    const head = this.buffer.slice(0, end).toLowerCase();
    const status = Number(head.slice(9, 12));
    let body;
    let rest;
    const lengthMatch = /\r\ncontent-length: *(\d+)/.exec(head);
    if (lengthMatch) {
      const length = Number(lengthMatch[1]);
      if (this.buffer.length < end + 4 + length) return;
      body = this.buffer.slice(end + 4, end + 4 + length);
      rest = this.buffer.slice(end + 4 + length);
    } else if (head.includes("transfer-encoding: chunked")) {
      let at = end + 4;
      body = "";
      for (;;) {
        const line = this.buffer.indexOf("\r\n", at);
        if (line < 0) return;
        const size = parseInt(this.buffer.slice(at, line), 16);
        if (this.buffer.length < line + 2 + size + 2) return;
        if (size === 0) {
          rest = this.buffer.slice(line + 4);
          break;
        }
        body += this.buffer.slice(line + 2, line + 2 + size);
        at = line + 2 + size + 2;
      }
    } else {
      this.pending.reject(new Error(`a response without a length: ${head.slice(0, 200)}`));
      this.pending = null;
      return;
    }
    this.buffer = rest;
    const { resolve, reject } = this.pending;
    this.pending = null;
    const text = Buffer.from(body, "latin1").toString("utf8");
    if (status !== 200) reject(new Error(`HTTP ${status}: ${text.slice(0, 200)}`));
    else resolve(text);
  }

  close() {
    this.socket.destroy();
  }
}

class PollingClient extends Client {
  async open() {
    this.getter = new HTTPConnection();
    this.poster = new HTTPConnection();
    this.outbox = [];
    this.posting = false;
    const handshake = await this.getter.request("GET", `${PATH}polling`);
    const sid = JSON.parse(handshake.slice(1)).sid;
    this.target = `${PATH}polling&sid=${encodeURIComponent(sid)}`;
    this.send("40");
    this.poll();
    return this.connected;
  }

  async poll() {
    while (!this.closing) {
      let payload;
      try {
        payload = await this.getter.request("GET", this.target);
      } catch (error) {
        this.closed(error.message);
        return;
      }
      for (const packet of payload.split(SEPARATOR)) this.receive(packet);
    }
  }

  send(packet) {
    this.outbox.push(packet);
    if (!this.posting) this.flush();
  }

  async flush() {
    this.posting = true;
    while (this.outbox.length && !this.closing) {
      const body = this.outbox.join(SEPARATOR);
      this.outbox = [];
      try {
        await this.poster.request("POST", this.target, body);
      } catch (error) {
        this.closed(error.message);
        break;
      }
    }
    this.posting = false;
  }

  close() {
    this.closing = true;
    this.getter.close();
    this.poster.close();
  }
}

async function openClients(count, transport) {
  const clients = [];
  const started = performance.now();
  for (let first = 0; first < count; first += options.batch) {
    const batch = [];
    for (let i = first; i < Math.min(count, first + options.batch); i++) {
      const client =
        transport === "polling"
          ? new PollingClient()
          : transport === "raw-websocket"
            ? new RawWebSocketClient()
            : new WebSocketClient();
      clients.push(client);
      batch.push(client.open());
    }
    await withTimeout(Promise.all(batch), options.timeout, `connecting clients ${first}..`);
  }
  emit({
    event: "connected",
    clients: count,
    connect_s: Number(((performance.now() - started) / 1000).toFixed(3)),
  });
  return clients;
}

function percentile(sorted, fraction) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}

// --- echo with ack: every client keeps one acknowledged event in flight ----------------------

async function echo() {
  const clients = await openClients(options.clients, options.transport);
  const payload = "x".repeat(options.size);
  const expected = `[${JSON.stringify(payload)}]`;
  let measuring = false;
  let acks = 0;
  const latencies = [];
  for (const client of clients) {
    let id = 0;
    let sentAt = 0;
    const next = () => {
      id += 1;
      sentAt = performance.now();
      client.send(`42${id}["echo",${JSON.stringify(payload)}]`);
    };
    client.onAck = (packet) => {
      const idEnd = packet.indexOf("[");
      if (Number(packet.slice(2, idEnd)) !== id || packet.slice(idEnd) !== expected) {
        fail(`unexpected ack ${packet.slice(0, 80)} for id ${id}`);
      }
      if (measuring) {
        acks += 1;
        latencies.push(performance.now() - sentAt);
      }
      next();
    };
    client.next = next;
  }
  for (const client of clients) client.next();
  await sleep(options.warmup);
  measuring = true;
  const start = performance.now();
  emit({ event: "measure_start" });
  await sleep(options.duration);
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  emit({ event: "measure_end" });
  for (const client of clients) client.close();
  latencies.sort((a, b) => a - b);
  emit({
    event: "result",
    transport: options.transport,
    clients: options.clients,
    acks,
    events_per_s: Math.round(acks / seconds),
    latency_ms: {
      p50: round(percentile(latencies, 0.5)),
      p99: round(percentile(latencies, 0.99)),
    },
    errors,
    first_error: firstError,
  });
}

// --- fan-out: one client asks for a broadcast to everyone; each records when it arrives ------

async function fanout() {
  const clients = await openClients(options.clients, "raw-websocket");
  const lines = readline.createInterface({ input: process.stdin });
  // The harness answers once it has read the server's memory with every client connected.
  await withTimeout(new Promise((resolve) => lines.once("line", resolve)), 60, "the harness");
  let arrivals = [];
  let done = null;
  const prefix = '42["tick",';
  for (const client of clients) {
    client.onEvent = (packet) => {
      const now = performance.now();
      if (!packet.startsWith(prefix)) return fail(`unexpected event ${packet.slice(0, 80)}`);
      arrivals.push(now - Number(packet.slice(prefix.length, -1)));
      if (arrivals.length === clients.length) done?.();
    };
  }
  const rounds = [];
  emit({ event: "measure_start" });
  for (let n = 0; n < options.broadcasts; n++) {
    arrivals = [];
    const finished = new Promise((resolve) => (done = resolve));
    clients[0].send(`42["fanout",${performance.now()}]`);
    try {
      await withTimeout(finished, options.timeout, "a broadcast");
    } catch (error) {
      fail(`${error.message}: ${arrivals.length} of ${clients.length} clients had it`);
      break;
    }
    arrivals.sort((a, b) => a - b);
    rounds.push({
      p50: percentile(arrivals, 0.5),
      p99: percentile(arrivals, 0.99),
      last: arrivals[arrivals.length - 1],
    });
    await sleep(options.pause);
  }
  emit({ event: "measure_end" });
  lines.close();
  for (const client of clients) client.close();
  const median = (key) => round(percentile(rounds.map((r) => r[key]).sort((a, b) => a - b), 0.5));
  emit({
    event: "result",
    clients: options.clients,
    broadcasts: rounds.length,
    latency_ms: { p50: median("p50"), p99: median("p99"), last: median("last") },
    worst_ms: { p99: round(Math.max(...rounds.map((r) => r.p99))), last: round(Math.max(...rounds.map((r) => r.last))) },
    errors,
    first_error: firstError,
  });
}

function round(value) {
  return value === null || value === undefined ? null : Number(value.toFixed(3));
}

try {
  await (options.mode === "fanout" ? fanout() : echo());
  process.exit(0);
} catch (error) {
  emit({ event: "result", errors: errors + 1, first_error: firstError ?? error.message });
  process.exit(1);
}
