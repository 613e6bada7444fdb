# Beacon: the two commands a newcomer needs are `make demo` and `make test`.
# Both create .venv on first use (python3 3.11+), install, and run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The trackers the example shop serves (package.json pins them; node_modules is ignored).
NODE_STAMP := node_modules/.installed-stamp
ARGS   ?=
# jsii prints a banner about Node 20's end of life on every synth (the value lists the
# silenced major versions); the CDK still works.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install demo local test test-fast lint format bench synth clean chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

## make chromium: the browser tests' Chromium — Debian's package, installed when it is
## missing and this machine allows it (root and apt-get); with CI=true a missing
## browser stops the run instead of letting the browser tests skip.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 \
	    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
	    || echo "apt-get could not install chromium" >&2; \
	fi; \
	if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$CI" = "true" ]; then \
	    echo "chromium is missing and CI=true: the browser tests must run" >&2; exit 1; \
	  fi; \
	  echo "warning: no chromium: the browser tests will skip (apt-get install -y chromium)" >&2; \
	fi

## make demo [ARGS=--exit]: local stack + simulated traffic + summary
demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/beacon demo $(ARGS)

## make local: the local stack in the foreground (with the example shop at /shop/)
local: $(STAMP) $(NODE_STAMP)
	$(BIN)/beacon local $(ARGS)

## make test: lint, then every suite (unit, integration, infra, e2e, browser)
test: $(STAMP) $(NODE_STAMP) chromium lint
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
BENCHMARKS := ingest consent identity matching_data segments scoring webhook pipeline local_iam cost archive recommendations attribution

bench: $(STAMP)
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py --write || exit 1; done

## make synth: `cdk synth` with the pinned CDK CLI (npm), no Docker, no credentials
synth: $(STAMP)
	npm ci --no-audit --no-fund --silent
	npx cdk synth --quiet

clean:
	rm -rf .build cdk.out .pytest_cache .mypy_cache .ruff_cache
