#!/usr/bin/env bash
# Install the public Engine.IO v4 and Socket.IO v5 protocol test suites (the test-suite/
# folders of github.com/socketio/engine.io-protocol and socket.io-protocol, mocha tests run in
# Node.js) for tests/transports/engineio/test_suite.py and tests/realtime/socketio/:
#
#     scripts/install-socketio-suites.sh     # into /tmp/socketio-node/suites
#     SOCKETIO_NODE_DIR=DIR scripts/install-socketio-suites.sh
#
# (then run the tests with the same SOCKETIO_NODE_DIR); scripts/socketio-suites/run.sh runs
# them. Needs node (>= 18), npm, curl and python3. The suites are fetched at
# the commits pinned below and changed in three places, none of them a test's assertion:
#   1. the server's URL comes from SERVER_URL (upstream: http://localhost:3000);
#   2. node-imports.js is ours: its WebSocket is the `ws` package's with
#      allowSynchronousEvents: false, as browsers dispatch one message event per task (the
#      suites' waitFor() registers its listener after each await, so ws's default, several
#      events in one tick, loses messages);
#   3. "ignores HTTP requests with same sid after upgrade" (engine.io) skips the server's
#      "3probe" answer when it is read after the test's poll: the two come on two connections,
#      in either order.
# mocha, chai, chai-string and node-fetch are upstream's versions; ws is 8.18.3, the first
# with allowSynchronousEvents. Re-running the script fetches and installs again.
set -euo pipefail

NODE_DIR=$(realpath -m "${SOCKETIO_NODE_DIR:-/tmp/socketio-node}")
SUITES=$NODE_DIR/suites
# Where the suites' files are fetched from: $SOURCE/socketio/<repository>/<commit>/<path>.
SOURCE=${SOCKETIO_SUITES_SOURCE:-https://raw.githubusercontent.com}
ENGINE_IO_COMMIT=f21de7b00ed09b3bbad2807db718ea5d6bc36aba
SOCKET_IO_COMMIT=4f633dd6a4445492d57af3b27ddd2d336014f1f1

say() { echo "install-socketio-suites: $*" >&2; }
for tool in node npm curl python3; do
  command -v "$tool" >/dev/null || { say "$tool is needed"; exit 1; }
done

fetch() { # repository commit path destination
  curl --fail --silent --show-error --location --max-time 60 -o "$4" "$SOURCE/socketio/$1/$2/$3"
}

# replace FILE OLD NEW: replace the one occurrence of OLD in FILE by NEW.
replace() {
  python3 - "$@" <<'PYTHON'
import sys
path, old, new = sys.argv[1:]
text = open(path, encoding="utf-8").read()
if text.count(old) != 1:
    sys.exit(f"install-socketio-suites: {path} holds {text.count(old)} copies of {old!r}, not 1")
open(path, "w", encoding="utf-8").write(text.replace(old, new))
PYTHON
}

mkdir -p "$SUITES"
for suite in engine.io socket.io; do
  commit=$ENGINE_IO_COMMIT
  [ "$suite" = socket.io ] && commit=$SOCKET_IO_COMMIT
  dir=$SUITES/$suite-protocol
  mkdir -p "$dir"
  say "fetching $suite-protocol's test suite at $commit"
  fetch "$suite-protocol" "$commit" test-suite/test-suite.js "$dir/test-suite.js"
  replace "$dir/test-suite.js" 'const URL = "http://localhost:3000";' \
    'const URL = process.env.SERVER_URL || "http://localhost:3000";'
  cat > "$dir/node-imports.js" <<'JS'
// Written by fullduplex's scripts/install-socketio-suites.sh: the globals the suite expects.
import fetch from "node-fetch";
import { WebSocket as WsWebSocket } from "ws";
import chai from "chai";
import chaiString from "chai-string";

chai.use(chaiString);

// One message event per task, as in browsers (see the script's header).
class WebSocket extends WsWebSocket {
  constructor(address, protocols, options) {
    super(address, protocols, { ...options, allowSynchronousEvents: false });
  }
}

globalThis.fetch = fetch;
globalThis.WebSocket = WebSocket;
globalThis.chai = chai;
JS
done
replace "$SUITES/engine.io-protocol/test-suite.js" '      expect(pollResponse.status).to.eql(400);

      socket.send("4hello");

      const { data } = await waitFor(socket, "message");' '      expect(pollResponse.status).to.eql(400);

      socket.send("4hello");

      let { data } = await waitFor(socket, "message");
      if (data === "3probe") {
        ({ data } = await waitFor(socket, "message"));
      }'

cat > "$SUITES/package.json" <<'JSON'
{
  "name": "socketio-protocol-suites",
  "private": true,
  "type": "module",
  "devDependencies": {
    "chai": "4.3.6",
    "chai-string": "1.5.0",
    "mocha": "9.2.1",
    "node-fetch": "3.2.0",
    "ws": "8.18.3"
  }
}
JSON
say "npm install in $SUITES"
(cd "$SUITES" && npm install --no-audit --no-fund --no-update-notifier --loglevel=error)
test -x "$SUITES/node_modules/.bin/mocha"
say "done: $SUITES (run them with scripts/socketio-suites/run.sh URL)"
