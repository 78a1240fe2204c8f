# Two commands on a fresh machine: `make run` (the console on the embedded simulator) and
# `make test` (ruff, the import layers, mypy, then the whole test suite). Each creates .venv and installs what it
# needs first: `make run` only what running needs, `make test` the test tools on top.
PY ?= python3
VENV := .venv
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $(RUN_STAMP)

# the test tools (pytest, ruff, mypy...) on top of what running needs
$(STAMP): $(RUN_STAMP)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: run test lint typecheck sim bench
run: $(RUN_STAMP)
	$(VENV)/bin/perpdesk

# The gates run first (seconds), the suite last (minutes); any failure stops `make test`.
lint: $(STAMP)
	$(VENV)/bin/ruff check core console bench tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	command -v tmux >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || true
	# the store tests start a real PostgreSQL from the server binaries (tests/helpers/pg_helpers.py); the
	# package is told to create no cluster of its own, so installing it opens no listening port
	command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update -qq && mkdir -p /etc/postgresql-common && (test -e /etc/postgresql-common/createcluster.conf || echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf) && apt-get install -y -qq postgresql) >/dev/null 2>&1 || true
	$(VENV)/bin/python -m pytest -q

sim: $(RUN_STAMP)
	$(VENV)/bin/perpdesk sim

bench: $(RUN_STAMP)
	$(VENV)/bin/python -m bench
