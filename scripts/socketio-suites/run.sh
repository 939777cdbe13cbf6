#!/usr/bin/env bash
# Run the Engine.IO v4 and Socket.IO v5 protocol suites (installed by
# scripts/install-socketio-suites.sh) against a server already listening on this machine:
#
#     scripts/socketio-suites/run.sh http://127.0.0.1:PORT [OUTDIR]
#
# The server answers Engine.IO at URL/engine.io/ (an echo) and Socket.IO at URL/socket.io/,
# with the settings the suites expect (docs/realtime.md). Environment: SOCKETIO_ONLY=engine.io
# or socket.io runs one suite; SOCKETIO_NODE_DIR is where the suites were installed (default
# /tmp/socketio-node). OUTDIR (default: a new folder under /tmp) gets, per suite,
# SUITE-suite.json (per test: title, state, duration_ms, error; with passed and failed counts)
# and SUITE-suite.log (mocha's output). Prints a line per test and ends with
# "N passed, N failed"; exits 0 only when every test passed, 2 on a usage error.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
URL=${1:-}
URL=${URL%/}
SUITES=${SOCKETIO_NODE_DIR:-/tmp/socketio-node}/suites
usage() { echo "run.sh: $*" >&2; exit 2; }

case $URL in
  http://127.*|http://localhost|http://localhost:*|"http://[::1]"*) ;;
  *) usage "a server URL on this machine is needed (http://127.0.0.1:PORT), not '$URL'" ;;
esac
[ -x "$SUITES/node_modules/.bin/mocha" ] || usage "no suites in $SUITES: run scripts/install-socketio-suites.sh"
OUTDIR=${2:-$(mktemp -d /tmp/socketio-suites.XXXXXX)}
mkdir -p "$OUTDIR" || usage "cannot write to $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
read -ra suites <<< "${SOCKETIO_ONLY:-engine.io socket.io}"

for suite in "${suites[@]}"; do
  case $suite in engine.io|socket.io) ;; *) usage "SOCKETIO_ONLY: no suite '$suite'" ;; esac
  rm -f "$OUTDIR/$suite-suite.json"
  echo "=== $suite protocol suite against $URL"
  # Every test has mocha's own time limit; `timeout` bounds a run that hangs all the same.
  (cd "$SUITES" && SERVER_URL=$URL RESULTS_JSON="$OUTDIR/$suite-suite.json" \
    timeout 300 node_modules/.bin/mocha --exit --reporter "$HERE/reporter.cjs" \
    "$suite-protocol/test-suite.js") > "$OUTDIR/$suite-suite.log" 2>&1
  grep -E '^(PASSED|FAILED) ' "$OUTDIR/$suite-suite.log"
  [ -f "$OUTDIR/$suite-suite.json" ] || echo "FAILED  $suite: no results (see $OUTDIR/$suite-suite.log)"
done

# The closing line: a suite without results counts as one failure.
node - "$OUTDIR" "${suites[@]}" <<'JS'
const fs = require("fs");
const [outdir, ...suites] = process.argv.slice(2);
let passed = 0, failed = 0;
for (const suite of suites) {
  const file = `${outdir}/${suite}-suite.json`;
  if (!fs.existsSync(file)) { failed += 1; continue; }
  const results = JSON.parse(fs.readFileSync(file, "utf8"));
  passed += results.passed;
  failed += results.failed;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
JS
