# Two commands on a fresh machine: `make run` (the console on the embedded simulator) and
# `make test` (the whole test suite). Each creates .venv and installs what it needs first.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: run test sim bench
run: $(STAMP)
	$(VENV)/bin/perpdesk

test: $(STAMP)
	command -v tmux >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || true
	$(VENV)/bin/python -m pytest -q

sim: $(STAMP)
	$(VENV)/bin/perpdesk sim

bench: $(STAMP)
	$(VENV)/bin/python -m bench
