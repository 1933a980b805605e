# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Most integration tests wait on sockets and timers, not the CPU: three workers (each test file
# stays on one worker) take the suite from about four minutes to about two on two cores.
# `make test PYTEST_JOBS=` runs it in one process.
PYTEST_JOBS ?= -n 3 --dist loadfile
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: test demo bench soak lint types unit clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q $(PYTEST_JOBS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# The demo draws its chart with matplotlib: the `plot` extra (also in `dev`, so that `make test`
# checks the chart).
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,plot]'
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/bybitkit demo

# The side-by-side baselines (ccxt, nautilus_trader) are the optional `bench` extra.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py

# The long reliability soak (tests/soak/): market makers on the sandbox under a seeded chaos
# schedule, every invariant checked. Until SOAK_FILLS fills (default 10000) and every fault kind,
# within SOAK_SECONDS (default 3600); SOAK_SEED replays a run (its seed is the first line).
# Setup output goes to stderr so that the seed stays the first line on stdout.
soak:
	@$(MAKE) -s --no-print-directory $(STAMP) 1>&2
	@$(BIN)/python tests/soak/harness.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
