// The engine.io-client browser bundle's echo check, run in Chromium by test_chromium.py.
// eioCheck({ url, mode, withCredentials }) resolves to
//   { ok, transports, received, error }: text and binary messages, some sent before the
// upgrade and some after it (mode "upgrade"), all echoed back in order.
window.eioCheck = function eioCheck({ url, mode, withCredentials }) {
  const TRANSPORTS = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] };
  const encode = (data) =>
    typeof data === 'string'
      ? 'text:' + data
      : 'binary:' + Array.from(new Uint8Array(data)).join(',');
  const first = ['hello', new Uint8Array([1, 2, 3, 4]), 'héllo ✓', new Uint8Array(5000).fill(7)];
  const second = ['after', new Uint8Array([0, 255])];
  const expected = [...first, ...second].map(encode);
  return new Promise((resolve) => {
    const result = { ok: false, transports: [], received: 0, error: null };
    const received = [];
    const finish = (ok, error) => {
      result.ok = ok;
      result.received = received.length;
      result.error = error || null;
      resolve(result);
    };
    setTimeout(() => finish(false, 'timeout'), 10000);
    const socket = eio(url, {
      path: '/engine.io/',
      transports: TRANSPORTS[mode],
      upgrade: mode === 'upgrade',
      withCredentials,
    });
    socket.binaryType = 'arraybuffer';
    const sendAll = (messages) => messages.forEach((message) => socket.send(message));
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
        socket.close();
        finish(same, same ? null : 'echoes differ: ' + JSON.stringify(received));
      }
    });
    socket.on('error', (error) => finish(false, String((error && error.message) || error)));
    socket.on('close', (reason) => {
      if (received.length < expected.length) finish(false, 'closed: ' + reason);
    });
  });
};
