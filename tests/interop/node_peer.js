// A Node `ws` peer for fullduplex's interoperability tests (tests/interop/test_node_ws.py).
//
// Usage: node node_peer.js '<JSON config>'
//
//   {"role": "server" | "client",
//    "url": "ws://127.0.0.1:PORT/" (client only),
//    "subprotocols": ["chat"],
//    "maxPayload": 8388608,
//    "tls": {"cert": PEM path, "key": PEM path} (server) | {"ca": PEM path} (client)}
//
// Both roles run the echo peer that tests/interop/conftest.py describes: data messages are
// echoed with their type; text messages starting with "!" are commands. The server serves one
// connection on 127.0.0.1 and a port the OS picks; the client exits after its connection.
// Reports go to stdout, one JSON object a line:
//
//   {"event": "listening", "port": N}           server only, before any connection
//   {"event": "close", "code": N, "reason": S}  the close frame this peer received
//   {"event": "error", "message": S}            anything unexpected
//
// Permessage-deflate is enabled in both roles (ws enables it by default only in clients).

'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const { WebSocket, WebSocketServer } = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const config = JSON.parse(process.argv[2]);
const subprotocols = config.subprotocols || [];
const maxPayload = config.maxPayload || 100 * 1024 * 1024;
let responseExtensions = '';

function report(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function runPeer(ws) {
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString('utf8');
    if (text === null || !text.startsWith('!')) {
      ws.send(isBinary ? data : text, { binary: isBinary });
      return;
    }
    const [command, ...args] = text.split(' ');
    if (command === '!info') {
      ws.send('info ' + JSON.stringify({
        subprotocol: ws.protocol || null,
        extensions: responseExtensions,
      }));
    } else if (command === '!close') {
      ws.close(Number(args[0]), args.slice(1).join(' '));
    } else if (command === '!ping') {
      const payload = args.join(' ');
      ws.once('pong', (data) => ws.send('pong ' + data.toString('utf8')));
      ws.ping(payload);
    } else if (command === '!fragments') {
      ws.send('peer-', { fin: false });
      ws.send('frag', { fin: false });
      ws.send('mented', { fin: true });
      ws.send(Buffer.from([0xff]), { binary: true, fin: false });
      ws.send(Buffer.from([0xfe]), { binary: true, fin: true });
    } else {
      report({ event: 'error', message: 'unknown command ' + command });
    }
  });
  ws.on('close', (code, reason) => {
    report({ event: 'close', code, reason: reason.toString('utf8') });
    if (config.role === 'client') process.exit(0);
  });
  ws.on('error', (error) => report({ event: 'error', message: String(error) }));
}

if (config.role === 'server') {
  const listener = config.tls
    ? https.createServer({
        cert: fs.readFileSync(config.tls.cert),
        key: fs.readFileSync(config.tls.key),
      })
    : http.createServer();
  const wss = new WebSocketServer({
    server: listener,
    perMessageDeflate: true,
    maxPayload,
    handleProtocols: (offered) => subprotocols.find((p) => offered.has(p)) || false,
  });
  wss.on('headers', (headers) => {
    const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
    responseExtensions = line ? line.slice(line.indexOf(':') + 1).trim() : '';
  });
  wss.on('connection', runPeer);
  listener.listen(0, '127.0.0.1', () => report({ event: 'listening', port: listener.address().port }));
} else {
  const options = { perMessageDeflate: true, maxPayload };
  if (config.tls) options.ca = fs.readFileSync(config.tls.ca);
  const ws = new WebSocket(config.url, subprotocols, options);
  ws.on('upgrade', (response) => {
    responseExtensions = response.headers['sec-websocket-extensions'] || '';
  });
  runPeer(ws);
}
