# Shinchoku: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
STACK = $(PYTHON) deploy/local/stack.py
PYTEST_ARGS ?=

.PHONY: run demo test down install stack-start stack-status check lint typecheck unit bench bench-alerts bench-ingest bench-kpi

run:            ## install, start Kafka + FerretDB + Prometheus + the three services, load the catalogue
	$(STACK) run

DEMO_DAYS ?= 365
DEMO_SPEED ?= 3
demo:           ## `run` with the demo feed (DEMO_DAYS of reporting at DEMO_SPEED days/s) and a webhook receiver
	SHINCHOKU_DEMO_DAYS=$(DEMO_DAYS) SHINCHOKU_DEMO_SPEED=$(DEMO_SPEED) $(STACK) demo

test:           ## install, start the stack, run unit + integration + e2e tests, stop what it started
	$(STACK) test $(PYTEST_ARGS)

down:           ## stop everything the local stack runs
	$(STACK) stop

install:
	$(STACK) install

stack-start:
	$(STACK) start

stack-status:
	$(STACK) status

unit:           ## the fast tier only (no Kafka, no MongoDB)
	.venv/bin/pytest tests/unit -q

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy

check: lint typecheck unit

bench:          ## every benchmark against raw baselines, one table + bench-results/bench.json (< 10 min; BENCH_ARGS=--quick or --full)
	$(STACK) bench $(BENCH_ARGS)

bench-alerts:   ## alerts delivery latency, status change → webhook receiver, at a steady rate (local stack)
	.venv/bin/python -m benchmarks.alerts_latency $(BENCH_ARGS)

bench-ingest:   ## ingest events/s (single and batch POSTs) against a bare aiokafka producer (local stack)
	.venv/bin/python -m benchmarks.ingest_bench $(BENCH_ARGS)

bench-kpi:      ## kpi service events/s with status recomputation vs a bare consumer + bulk insert
	.venv/bin/python -m benchmarks.kpi_bench $(BENCH_ARGS)
