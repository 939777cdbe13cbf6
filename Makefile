# `make demo` and `make test` set up everything they need themselves: a virtualenv in .venv
# (with the C extension built when a compiler is there), the Node packages of tests/, and,
# for the tests, the system packages chromium and nodejs (scripts/ensure-system-packages.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
# This machine's pip configuration names local indexes that may not exist; pip warns about
# each of them on every install. Keep the output readable.
PIP_FILTER := { grep -v 'is neither a file nor a directory' || true; }
VENV := .venv
BIN := $(VENV)/bin
# Each stamp records one finished `pip install`; it is redone when the packaging changes.
PACKAGING := pyproject.toml setup.py src/fullduplex/protocol/_speedups.c
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
NODE_STAMP := tests/node_modules/.installed
# sockjs-client, which the SockJS endpoint serves to browsers (never from a CDN).
SOCKJS_CLIENT := src/fullduplex/transports/sockjs/client
SOCKJS_CLIENT_STAMP := $(SOCKJS_CLIENT)/node_modules/.installed
# socket.io-client, which the chat example serves to its page.
CHAT_CLIENT := examples/chat
CHAT_CLIENT_STAMP := $(CHAT_CLIENT)/node_modules/.installed

.PHONY: demo test lint test-speedups test-pure coverage system-packages clean

demo: $(RUN_STAMP) $(SOCKJS_CLIENT_STAMP) $(CHAT_CLIENT_STAMP)
	$(BIN)/python examples/demo.py

test: lint test-speedups test-pure coverage

# Line and branch coverage of src/fullduplex over both passes, measured in pytest's process (the
# CLI's and the examples' own subprocesses are not). `make test` fails below the floor. The
# pure-Python pass alone, without the slow and browser tests, measured 82% on 2026-12-06.
COVERAGE_FLOOR := 80

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict src

test-speedups: $(TEST_STAMP) $(NODE_STAMP) $(SOCKJS_CLIENT_STAMP) $(CHAT_CLIENT_STAMP) system-packages
	$(BIN)/pytest --cov=fullduplex --cov-report=

# The same suite on the pure-Python code path; tests/test_autobahn.py runs a smaller Autobahn
# selection there (its docstring says which cases and why).
test-pure: $(TEST_STAMP) $(NODE_STAMP) $(SOCKJS_CLIENT_STAMP) $(CHAT_CLIENT_STAMP) system-packages
	FULLDUPLEX_NO_SPEEDUPS=1 $(BIN)/pytest --cov=fullduplex --cov-append --cov-report=

coverage: $(TEST_STAMP)
	$(BIN)/coverage report --fail-under=$(COVERAGE_FLOOR)

system-packages:
	scripts/ensure-system-packages.sh chromium nodejs npm

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "fullduplex needs Python >= 3.11; run make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) \
		&& scripts/ensure-system-packages.sh python3-venv && $(PYTHON) -m venv $(VENV); }

$(RUN_STAMP): $(PACKAGING) | $(BIN)/python
	$(BIN)/pip install -q -e '.[speed]' 2>&1 | $(PIP_FILTER)
	@touch $@

# The tests need the compiled extension (their pure-Python pass runs with FULLDUPLEX_NO_SPEEDUPS=1):
# a failed compile stops here instead of testing pure Python twice.
$(TEST_STAMP): $(PACKAGING) | $(BIN)/python
	FULLDUPLEX_BUILD_SPEEDUPS=require $(BIN)/pip install -q -e '.[test,speed]' 2>&1 | $(PIP_FILTER)
	@touch $@ $(RUN_STAMP)

$(NODE_STAMP): tests/package.json tests/package-lock.json
	scripts/ensure-system-packages.sh nodejs npm
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(SOCKJS_CLIENT_STAMP): $(SOCKJS_CLIENT)/package.json $(SOCKJS_CLIENT)/package-lock.json
	scripts/ensure-system-packages.sh nodejs npm
	cd $(SOCKJS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHAT_CLIENT_STAMP): $(CHAT_CLIENT)/package.json $(CHAT_CLIENT)/package-lock.json
	scripts/ensure-system-packages.sh nodejs npm
	cd $(CHAT_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf $(VENV) build dist src/*.egg-info tests/node_modules $(SOCKJS_CLIENT)/node_modules \
		$(CHAT_CLIENT)/node_modules \
		.pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
	find src tests examples bench -name __pycache__ -prune -exec rm -rf {} +
	rm -f src/fullduplex/protocol/*.so

# The benchmark (bench/run.py, about 20 minutes): every cell against fullduplex, picows, websockets,
# aiohttp and Node ws; rewrites docs/benchmarks.md. Options: make bench BENCH_ARGS='--cells b,c'.
# bench-smoke is the short run that tests/test_bench_smoke.py makes: cell (c), fullduplex, ~2 s.
.PHONY: bench bench-smoke
bench: $(TEST_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/asgi.py
	$(BIN)/python bench/realtime/run.py

bench-smoke: $(TEST_STAMP)
	$(BIN)/python bench/run.py --smoke

# The transport benchmark (bench/transports/measure.py, about 10 minutes): every transport
# (polling, long-polling, streaming, EventSource, SockJS over WebSocket, raw WebSocket) with 100,
# 1,000 and 10,000 clients; rewrites the measured section at the end of docs/transports.md.
.PHONY: bench-transports
bench-transports: $(TEST_STAMP)
	$(BIN)/pip install -q matplotlib 2>&1 | $(PIP_FILTER)
	$(BIN)/python bench/transports/measure.py $(BENCH_TRANSPORTS_ARGS)

# uvicorn's WebSocket implementations behind a FastAPI echo route (bench/asgi.py, about
# 3 minutes): fullduplex.asgi, websockets-sansio and wsproto; cells (b), (c) and idle memory.
.PHONY: bench-asgi
bench-asgi: $(TEST_STAMP)
	$(BIN)/python bench/asgi.py $(BENCH_ARGS)

# The Socket.IO servers (bench/realtime/run.py, about 5 minutes): fullduplex, python-socketio
# under uvicorn/uvloop and socket.io on Node; echo with ack over WebSocket and long-polling,
# fan-out to 1,000 and 10,000 clients, memory per client. Writes its section of
# docs/benchmarks.md. Options: make bench-realtime BENCH_ARGS='--servers fullduplex,node'.
.PHONY: bench-realtime
bench-realtime: $(TEST_STAMP)
	$(BIN)/python bench/realtime/run.py $(BENCH_ARGS)
