# make run   — create .venv, install, start gunicorn on PORT (8000) with WORKERS (4)
# make test  — the whole test suite
# make bench — the side-by-side benchmark (see bench/)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 4
# bench.run at full scale (10,000 users, 200,000 posts; ~12 min on 2 cores): the table goes to
# bench/results/latest.md and README.md. `make bench BENCH_ARGS=--quick` is a 2-minute smoke run.
BENCH_ARGS ?= --readme
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
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	mkdir -p bench/results
	$(BIN)/python -m bench.micro | tee bench/results/micro.txt
	$(BIN)/python -m bench.postlist_choice
	$(BIN)/python -m bench.stats_overhead
	$(BIN)/python -m bench.fanout_curve
	$(BIN)/python -m bench.compression | tee bench/results/compression.md
	$(BIN)/python -m bench.request_overhead | tee bench/results/request_overhead.md
	$(BIN)/python -m bench.service_time | tee bench/results/service_time.md
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.mix_paired | tee bench/results/mix_paired.md

clean:
	rm -rf $(VENV) var .pytest_cache
