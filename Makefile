# Every setup step lives here: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install ui-assets demo test lint typecheck unit coverage bench bench-peers clean chromium pg site docs cli-docs

UI_DIR := src/statemachine_engine/monitoring
MERMAID := $(UI_DIR)/static/vendor/mermaid.min.js
# Test-only: the real Mermaid parser and Ajv check diagrams and the JSON Schema (tests/tools).
TOOL_NODE := tests/tools/node/node_modules/.installed

install: $(STAMP) $(MERMAID) chromium $(TOOL_NODE)

# Front-end dependencies come from the npm registry at build time and ship inside the wheel;
# setup.py refuses to build a wheel or sdist without them.
ui-assets: $(MERMAID)

$(MERMAID): $(UI_DIR)/frontend/package.json $(UI_DIR)/frontend/package-lock.json
	mkdir -p build/ui $(@D)
	cp $(UI_DIR)/frontend/package.json $(UI_DIR)/frontend/package-lock.json build/ui/
	cd build/ui && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	cp build/ui/node_modules/mermaid/dist/mermaid.min.js $@

$(TOOL_NODE): tests/tools/node/package.json tests/tools/node/package-lock.json
	cd tests/tools/node && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# The browser tests drive Debian's chromium through Playwright; no browser download.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	  else sudo apt-get update && sudo apt-get install -y chromium; fi; }

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

demo: install
	$(PY) examples/pipeline/demo.py

lint: install
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench

typecheck: install
	$(VENV)/bin/mypy

# The PostgreSQL suite always runs for real: STATEMACHINE_TEST_PG if set, else a local server
# on 127.0.0.1:5432, started (or installed) by the script when none answers.
pg:
	@scripts/pg_test_server.sh >/dev/null

# Three test workers (the suite mostly waits on processes, browsers and databases; tests of
# one `xdist_group`, such as the builds from the source tree, on the same worker), then the
# tests marked `serial` (CPU, memory and time budgets) one at a time. `make coverage` runs
# the same with coverage added up over both runs (slower: `make test` keeps CI's 10 minutes).
COV ?=
unit: install pg
	export STATEMACHINE_TEST_PG="$$(scripts/pg_test_server.sh)" && \
	$(VENV)/bin/pytest -n 3 --dist loadgroup -m "not serial" $(if $(COV),--cov --cov-report=) -q && \
	$(VENV)/bin/pytest -m serial $(if $(COV),--cov --cov-append --cov-report=term:skip-covered) -q

coverage:
	$(MAKE) unit COV=1

# The documentation site: built strictly (a broken link or anchor fails the build), after
# regenerating the CLI reference from the parsers.
site: cli-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The CLI and actions reference pages are generated from the parsers and the action
# declarations; a test fails when one is stale.
cli-docs: install
	$(PY) scripts/gen_cli_docs.py
	$(PY) scripts/gen_actions_docs.py

docs: cli-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

test: lint typecheck site unit

# Benchmarks, never part of `make test`. The peers (pgqueuer, procrastinate, huey) are
# installed by the bench itself, each into its own bench/.venv-<peer>.
bench: install pg
	$(PY) bench/run.py

bench-peers: install pg
	$(PY) bench/run.py --only peers

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .coverage* data
