# Beacon: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv on first use (python3 3.11+), install, and run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=
# jsii prints a banner about Node 20's end of life on every synth (the value lists the
# silenced major versions); the CDK still works.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install demo local test test-fast lint format bench synth clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## make demo [ARGS=--exit]: local stack + simulated traffic + summary
demo: $(STAMP)
	$(BIN)/beacon demo $(ARGS)

## make local: the local stack in the foreground
local: $(STAMP)
	$(BIN)/beacon local $(ARGS)

## make test: lint, then every suite (unit, integration, infra, e2e)
test: $(STAMP) lint
	$(BIN)/pytest -n 2 --dist loadfile $(ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n 2 tests/unit $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions infra app.py bench models simulator cli

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make bench: run every bench/ script and rewrite docs/benchmarks.md
BENCHMARKS := ingest consent identity matching_data segments scoring webhook pipeline local_iam cost

bench: $(STAMP)
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py --write || exit 1; done

## make synth: `cdk synth` with the pinned CDK CLI (npm), no Docker, no credentials
synth: $(STAMP)
	npm ci --no-audit --no-fund --silent
	npx cdk synth --quiet

clean:
	rm -rf .build cdk.out .pytest_cache .mypy_cache .ruff_cache
