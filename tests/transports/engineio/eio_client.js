// An engine.io-client (Node) peer for tests/transports/engineio/test_node_client.py.
//
// Usage: node eio_client.js URL MODE [server-close]
//   URL   the server's origin, e.g. http://127.0.0.1:PORT (the endpoint is at /engine.io/)
//   MODE  polling | websocket | upgrade (polling first, then the upgrade to WebSocket)
//   server-close: after the echoes, send "close-me" and wait for the server to close the
//         session ("close" event) instead of closing it here.
//
// Sends text and binary messages to an echo server, some before and some after the upgrade
// (and some while it runs, in upgrade mode), and waits for every echo. Prints one JSON line:
//   {"ok": bool, "transports": [names seen], "received": N, "error": S}
// and exits 0 when every echo came back in order, 1 otherwise (10 s at most).

'use strict';

const path = require('path');
const { Socket } = require(path.join(__dirname, '..', '..', 'node_modules', 'engine.io-client'));

const [url, mode, ending] = process.argv.slice(2);
const TRANSPORTS = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] };
if (!url || !TRANSPORTS[mode]) {
  console.error('usage: node eio_client.js URL polling|websocket|upgrade');
  process.exit(2);
}

const encode = (data) =>
  typeof data === 'string' ? { text: data } : { binary: Buffer.from(data).toString('hex') };
const first = ['hello', Buffer.from([1, 2, 3, 4]), 'héllo ünïcode ✓', Buffer.alloc(100000, 7)];
const second = ['after', Buffer.from([0, 255]), 'x'.repeat(50000)];
const expected = [...first, ...second].map(encode);

const result = { ok: false, transports: [], received: 0, error: null };
const received = [];
let finished = false;
function finish(ok, error) {
  if (finished) return;
  finished = true;
  result.ok = ok;
  result.received = received.length;
  result.error = error || null;
  // Exit once the line is written: stdout to a pipe is asynchronous in Node.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(ok ? 0 : 1));
}
setTimeout(() => finish(false, 'timeout'), 10000).unref();

const socket = new Socket(url, {
  path: '/engine.io/',
  transports: TRANSPORTS[mode],
  upgrade: mode === 'upgrade',
});

function sendAll(messages) {
  for (const message of messages) socket.send(message);
}

socket.on('open', () => {
  result.transports.push(socket.transport.name);
  sendAll(first);
  if (mode !== 'upgrade') sendAll(second);
});
socket.on('upgrade', (transport) => {
  result.transports.push(transport.name);
  sendAll(second);
});
socket.on('message', (data) => {
  received.push(encode(data));
  if (received.length === expected.length) {
    const same = JSON.stringify(received) === JSON.stringify(expected);
    if (ending === 'server-close') {
      result.closeReason = null;
      socket.on('close', (reason) => {
        result.closeReason = reason;
        finish(same, same ? null : 'echoes differ from what was sent');
      });
      socket.send('close-me');
      return;
    }
    socket.close();
    // Leave time for the close to reach the server (a POST, or the WebSocket's close frame).
    setTimeout(() => finish(same, same ? null : 'echoes differ from what was sent'), 200);
  }
});
socket.on('error', (error) => finish(false, String(error && error.message || error)));
socket.on('close', (reason) => {
  if (received.length < expected.length) finish(false, `closed: ${reason}`);
});
