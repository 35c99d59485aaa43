# steward — the targets CI runs. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STATE_DIR ?= .state
FLEET_PORT ?= 8080

.PHONY: venv run fleet test lint typecheck pytest bench bench-load bench-checks bench-transitions bench-timers \
	bench-restart bench-reload bench-events bench-kv bench-fleet bench-fleet-status bench-cli bench-rss bench-virtual-fleet bench-fleet-quick bench-quick docker-setup package package-test systemd-test \
	clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run the daemon in the foreground on the example machines (state in ./.state, no NATS)
run: $(STAMP)
	$(BIN)/steward run --machines machines --state-dir $(STATE_DIR) --log-format text

## a fleet on this box: nats-server (JetStream), three daemons (web1, web2, db1) on copies of
## machines/, and the live dashboard on http://127.0.0.1:8080/ (Ctrl-C stops everything)
fleet: $(STAMP)
	$(BIN)/steward fleet demo --machines machines --listen 127.0.0.1:$(FLEET_PORT)

## ruff, mypy and the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check steward tests bench
	$(BIN)/ruff format --check steward tests bench

typecheck: $(STAMP)
	$(BIN)/mypy steward

pytest: $(STAMP)
	$(BIN)/pytest -q -rs

## every benchmark, each side by side with its baseline where it has one; figures and
## PASS/MISS lines are appended to bench/RESULTS.md (~55 min, 25 of them bench-virtual-fleet; quiet machine; root for monit,
## a Docker engine for bench-restart: make docker-setup)
bench: $(STAMP) bench-load bench-checks bench-transitions bench-timers bench-restart bench-reload \
	bench-events bench-kv bench-fleet bench-fleet-status bench-cli bench-rss bench-virtual-fleet

## scenario 1 alone: 1,000 exec+timer machines (load, RSS, CPU per check, check rate)
bench-load: $(STAMP)
	$(BIN)/python bench/load_machines.py --machines 1000

## scenario 1: CPU per check that changes no state: 1,000 exec-only machines (/bin/true every
## 5 s) in steward, in a bare asyncio spawn loop and in monit, alternating rounds
bench-checks: $(STAMP)
	$(BIN)/python bench/check_cpu.py

## scenario 6 (issue 19): daemon CPU per committed transition (timer machines; no NATS, then
## JetStream)
bench-transitions: $(STAMP)
	$(BIN)/python bench/transition_cpu.py

## scenario 2: 10,000 timer machines (load time and phases, RSS, idle CPU, status call)
bench-timers: $(STAMP)
	$(BIN)/python bench/timers_10k.py

## scenario 3: a crashed container (SIGKILL of its main process) -> running again, steward's
## keeper vs the engine's own --restart always, alternating; -> the transition event
## (needs an engine: make docker-setup)
bench-restart: $(STAMP)
	$(BIN)/python bench/restart_compare.py

## scenario 5: event latency (transition -> NATS subscriber), sustained transitions/s
bench-events: $(STAMP)
	$(BIN)/python bench/events_latency.py

## a KV put -> its transition, watch mode (target p99 <= 100ms) and poll mode (1s interval)
bench-kv: $(STAMP)
	$(BIN)/python bench/kv_latency.py

## scenario 4: reload latency, a machine file renamed into the dir -> running (50 drops)
bench-reload: $(STAMP)
	$(BIN)/python bench/reload_latency.py --drops 50

## issue 15: spec put -> shipped machine running on 5 in-process daemons; a governed rollout
bench-fleet: $(STAMP)
	$(BIN)/python bench/fleet_rollout.py

## steward fleet status on a bucket with 10,000 node x machine keys
bench-fleet-status: $(STAMP)
	$(BIN)/python bench/fleet_status.py

## issue 19: steward version / status (100 machines) / validate vs a bare interpreter
bench-cli: $(STAMP)
	$(BIN)/python bench/cli_speed.py

## issue 19: the daemon's RSS with 100 machines, metrics on, without NATS and with JetStream
bench-rss: $(STAMP)
	$(BIN)/python bench/daemon_rss.py

## issue 17: 10,000 virtual nodes (4 processes, real outbox/publisher code) on a 3-server
## JetStream cluster (R3): 5 min steady state, then the whole cluster down 10 min and the drain
## after it (~20 min; needs ~6 GB of RAM and 10,000 x 4 file descriptors over the workers)
bench-virtual-fleet: $(STAMP)
	$(BIN)/python bench/virtual_fleet.py --nodes 10000 --processes 4 --steady 5m --storm 10m

## the virtual fleet's smoke run (200 nodes, 20 s steady, a 20 s outage; nothing recorded)
bench-fleet-quick: $(STAMP)
	$(BIN)/python bench/virtual_fleet.py --quick --no-record

## smoke runs of every benchmark, nothing recorded (CI runs this so the code never rots)
bench-quick: $(STAMP) bench-fleet-quick
	$(BIN)/python bench/load_machines.py --quick --no-record
	$(BIN)/python bench/check_cpu.py --quick --no-record
	$(BIN)/python bench/transition_cpu.py --quick --no-record
	$(BIN)/python bench/timers_10k.py --quick --no-record
	$(BIN)/python bench/restart_compare.py --quick --no-record
	$(BIN)/python bench/reload_latency.py --quick --no-record
	$(BIN)/python bench/events_latency.py --quick --no-record
	$(BIN)/python bench/fleet_rollout.py --quick --no-record
	$(BIN)/python bench/fleet_status.py --quick --no-record
	$(BIN)/python bench/kv_latency.py --quick --no-record
	$(BIN)/python bench/cli_speed.py --quick --no-record
	$(BIN)/python bench/daemon_rss.py --quick --no-record

## a Docker engine and the test image (root: installs docker.io and busybox-static if missing)
docker-setup:
	bash tests/docker/setup.sh

## the .deb of Debian 12 and 13, amd64 and arm64, and the .rpm of x86_64 and aarch64 in dist/
## (nfpm, uv; root and a Docker engine for all but Debian 12 amd64; see packaging/README.md)
package:
	bash packaging/build.sh

## build, install, run, upgrade and purge both packages on this machine (root; CI runs it)
package-test:
	bash packaging/test.sh

## the packages under a real systemd, in a container of each target (Debian 12 and 13, amd64
## and arm64 under qemu): readiness, reload, restarts, watchdog, journal priorities, hardening
## score (root, a Docker engine; CI runs it)
systemd-test:
	bash packaging/systemd-test.sh

clean:
	rm -rf $(VENV) $(STATE_DIR) .mypy_cache .ruff_cache .pytest_cache *.egg-info
