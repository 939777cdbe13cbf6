#!/usr/bin/env bash
# Install the public SockJS protocol test suite (github.com/sockjs/sockjs-protocol:
# sockjs-protocol.py, 68 tests of protocol 0.3.3 and its later fixes, and http-quirks.py, 1
# test) for tests/transports/sockjs/test_protocol_suite.py:
#
#     scripts/install-sockjs-suite.sh        # into /tmp/sockjs-harness-venv
#     SOCKJS_VENV=DIR scripts/install-sockjs-suite.sh
#
# (then run the tests with the same SOCKJS_VENV); scripts/sockjs-suite/run.sh runs it. Needs
# python3 with venv and curl. The result is a virtualenv with the
# suite's clients (websocket-client, ws4py) and, in its folder suite/, the suite's three files
# at the commit pinned below. Upstream is Python 2; they are ported to Python 3 here, with
# no change to what a test sends or checks: Python 3's module names (urllib.parse, http.client
# for upstream's copy of httplib, queue, unittest for unittest2), `async` renamed (a keyword
# now), and text sent and read as bytes on the raw sockets (UTF-8; latin-1 for the bytes that
# are not, the hixie-76 key). A raw read that meets the end of the stream raises instead of
# spinning; http-quirks' bodiless POST is written by hand, as http.client would add the
# Content-Length: 0 that the test is there to leave out. Re-running the script starts over.
set -euo pipefail

VENV=$(realpath -m "${SOCKJS_VENV:-/tmp/sockjs-harness-venv}")
# Where the suite's files are fetched from: $SOURCE/sockjs/sockjs-protocol/<commit>/<file>.
SOURCE=${SOCKJS_SUITE_SOURCE:-https://raw.githubusercontent.com}
COMMIT=fdf5b7d719de6bd74ea4aedd264f01814b4f226d
PYTHON=${PYTHON:-python3}

say() { echo "install-sockjs-suite: $*" >&2; }
command -v curl >/dev/null || { say "curl is needed"; exit 1; }

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
say "installing the suite's clients into $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check websocket-client==1.9.2 ws4py==0.6.0

rm -rf "$VENV/suite"
mkdir -p "$VENV/suite"
for file in sockjs-protocol.py utils.py http-quirks.py; do
  say "fetching $file at $COMMIT"
  curl --fail --silent --show-error --location --max-time 60 -o "$VENV/suite/$file" \
    "$SOURCE/sockjs/sockjs-protocol/$COMMIT/$file"
done

# Each change names the text it replaces and how many times that text occurs.
"$VENV/bin/python" - "$VENV/suite" <<'PYTHON'
import sys
from pathlib import Path

suite = Path(sys.argv[1])
MODULES = (
    "import urlparse\nimport httplib_fork as httplib\n",
    "import urllib.parse as urlparse\nimport http.client as httplib\n",
    1,
)
CHANGES = {
    "sockjs-protocol.py": [
        ("import unittest2 as unittest\n", "import unittest\n", 1),
        ("in [int, long]", "in [int]", 3),
        ("lambda(ws):", "lambda ws:", 1),
        ("unichr(i)", "chr(i)", 2),
    ],
    "http-quirks.py": [
        ("import unittest2 as unittest\n", "import unittest\n", 1),
        MODULES,
        (
            "    conn.request('POST', path)\n",
            "    conn.putrequest('POST', path)  # no Content-Length: the quirk under test\n"
            "    conn.endheaders()\n",
            1,
        ),
        ("    body = res.read()\n", "    body = res.read().decode('utf-8')\n", 1),
    ],
    "utils.py": [
        MODULES,
        ("import Queue\n", "import queue as Queue\n", 1),
        ("async=False", "async_=False", 1),
        ("if not async:", "if not async_:", 1),
        ("async=True", "async_=True", 1),
        ("method is 'POST'", "method == 'POST'", 1),
        ("isinstance(body, unicode)", "isinstance(body, str)", 1),
        ("queue.put(unicode(str(m), 'utf-8'))", "queue.put(str(m))", 1),
        (
            "            def closed(self, code, reason):\n",
            "            def closed(self, code, reason=None):\n"
            "                if isinstance(reason, bytes):\n"
            "                    reason = reason.decode('utf-8', 'replace')\n",
            1,
        ),
        (
            "    while c != '\\n':\n        c = s.recv(1)\n        b.append( c )\n"
            "    return ''.join(b)\n",
            "    while c != b'\\n':\n        c = s.recv(1)\n"
            "        if not c:\n            raise Exception('Socket closed!')\n"
            "        b.append( c )\n    return b''.join(b).decode('latin-1')\n",
            1,
        ),
        ("return self.s.recv(999999)\n", "return text(self.s.recv(999999))\n", 1),
        ("        return ''.join(data)\n", "        return text(b''.join(data))\n", 2),
        ("self.s.recv(1) == ''", "self.s.recv(1) == b''", 1),
        (
            "        bytes = int(line, 16) + 2 # Additional \\r\\n\n"
            "        return self.read(bytes)[:-2]\n",
            "        size = int(line, 16) + 2 # Additional \\r\\n\n"
            "        return text(self.read_bytes(size)[:-2])\n",
            1,
        ),
        (
            "    def send(self, data):\n        self.s.sendall(data)\n",
            "    def read_bytes(self, size):\n"
            "        data = b''\n"
            "        while len(data) < size:\n"
            "            c = self.s.recv(size - len(data))\n"
            "            if not c:\n"
            "                raise Exception('Socket closed!')\n"
            "            data += c\n"
            "        return data\n\n"
            "    def send(self, data):\n"
            "        self.s.sendall(data.encode('utf-8') if isinstance(data, str) else data)\n",
            1,
        ),
        (
            "\nclass CaseInsensitiveDict(object):\n",
            "\ndef text(data):\n"
            "    try:\n        return data.decode('utf-8')\n"
            "    except UnicodeDecodeError:\n        return data.decode('latin-1')\n\n"
            "\nclass CaseInsensitiveDict(object):\n",
            1,
        ),
    ],
}
for name, changes in CHANGES.items():
    path = suite / name
    source = path.read_text(encoding="utf-8")
    for old, new, count in changes:
        if source.count(old) != count:
            sys.exit(f"{name}: {old!r} occurs {source.count(old)} times, not {count}")
        source = source.replace(old, new)
    path.write_text(source, encoding="utf-8")
PYTHON
"$VENV/bin/python" -c "import ast, sys; [ast.parse(open(f).read()) for f in sys.argv[1:]]" \
  "$VENV"/suite/*.py
say "done: $VENV/suite (run it with scripts/sockjs-suite/run.sh URL)"
