#!/usr/bin/env bash
# Run the SockJS protocol suite (installed by scripts/install-sockjs-suite.sh) against a
# server already listening on this machine:
#
#     scripts/sockjs-suite/run.sh http://127.0.0.1:PORT [OUTDIR]
#
# The server answers the prefixes the suite expects (examples/sockjs_test_server.py says
# which). SOCKJS_VENV is where the suite was installed (default /tmp/sockjs-harness-venv).
# Prints a line per test (PASSED, FAILED or ERROR, then Class.method) and ends with
# "N passed, N failed"; OUTDIR (default: a new folder under /tmp) gets suite.log, unittest's
# output with each failure's traceback. Exits 0 only when every test passed, 2 on a usage error.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
URL=${1:-}
URL=${URL%/}
VENV=${SOCKJS_VENV:-/tmp/sockjs-harness-venv}
usage() { echo "run.sh: $*" >&2; exit 2; }

case $URL in
  http://127.*|http://localhost|http://localhost:*|"http://[::1]"*) ;;
  *) usage "a server URL on this machine is needed (http://127.0.0.1:PORT), not '$URL'" ;;
esac
[ -f "$VENV/suite/sockjs-protocol.py" ] || usage "no suite in $VENV: run scripts/install-sockjs-suite.sh"
OUTDIR=${2:-$(mktemp -d /tmp/sockjs-suite.XXXXXX)}
mkdir -p "$OUTDIR" || usage "cannot write to $OUTDIR"
# Every socket of the suite has a timeout; `timeout` bounds a run that hangs all the same.
timeout 300 "$VENV/bin/python" -B "$HERE/run_suite.py" "$URL" "$VENV/suite" 2> "$OUTDIR/suite.log"
