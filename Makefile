# make run   — create .venv, install, start gunicorn on PORT (8000) with WORKERS (4)
# make test  — the whole test suite
# make bench — the side-by-side benchmark (see bench/)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 4
STAMP := $(VENV)/.installed

.PHONY: run test bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.micro
	$(BIN)/python -m bench.postlist_choice
	$(BIN)/python -m bench.stats_overhead

clean:
	rm -rf $(VENV) var .pytest_cache
