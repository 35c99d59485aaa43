# steward — the targets CI runs. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STATE_DIR ?= .state

.PHONY: venv run test lint typecheck pytest bench bench-reload bench-events bench-quick bench-docker \
	docker-setup package package-test clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run the daemon in the foreground on the example machines (state in ./.state, no NATS)
run: $(STAMP)
	$(BIN)/steward run --machines machines --state-dir $(STATE_DIR) --log-format text

## ruff, mypy and the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check steward tests bench
	$(BIN)/ruff format --check steward tests bench

typecheck: $(STAMP)
	$(BIN)/mypy steward

pytest: $(STAMP)
	$(BIN)/pytest -q -rs

## benchmarks; results are appended to bench/RESULTS.md
bench: $(STAMP) bench-reload bench-events
	$(BIN)/python bench/load_machines.py --machines 1000

## event latency (transition -> NATS subscriber) and sustained transitions/s with JetStream
bench-events: $(STAMP)
	$(BIN)/python bench/events_latency.py

## smoke runs of every benchmark (nothing recorded)
bench-quick: $(STAMP)
	$(BIN)/python bench/load_machines.py --quick --no-record
	$(BIN)/python bench/events_latency.py --quick --no-record

## docker kill -> fail transition (p50/p99 over 20 kills); needs an engine (make docker-setup)
bench-docker: $(STAMP)
	$(BIN)/python bench/docker_kill.py --kills 20

## a Docker engine and the test image (root: installs docker.io and busybox-static if missing)
docker-setup:
	bash tests/docker/setup.sh

## reload latency: a machine file renamed into the dir -> running (p50/p99 over 50 drops)
bench-reload: $(STAMP)
	$(BIN)/python bench/reload_latency.py --drops 50

## dist/steward_<version>_amd64.deb and dist/steward-<version>.x86_64.rpm (nfpm, uv; see packaging/)
package:
	bash packaging/build.sh

## build, install, run, upgrade and purge both packages on this machine (root; CI runs it)
package-test:
	bash packaging/test.sh

clean:
	rm -rf $(VENV) $(STATE_DIR) .mypy_cache .ruff_cache .pytest_cache *.egg-info
