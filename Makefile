# OpenOps — `make demo` to try it, `make test` to test it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export ANONYMIZED_TELEMETRY := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast bench lint lock clean

install: $(STAMP)

# torch first (the CPU build), then every pinned dependency from the lock, then the project
# itself without dependencies: pip never resolves, so it never backtracks.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24" "setuptools>=77" wheel
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	$(BIN)/python -m api.demo

test: install
	$(BIN)/python -m pytest -q -rs

test-fast: install
	$(BIN)/python -m pytest -q -rs -m "not slow"

bench: install
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/ttft_bench.py
	$(BIN)/python bench/ask_ttft_bench.py
	$(BIN)/python bench/retrieval_eval.py
	$(BIN)/python bench/personal_bench.py

lint: install
	$(BIN)/ruff check rag ingest api bot tests bench

# Re-pin after changing dependencies in pyproject.toml (run in a venv that has them installed).
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v -E '^(openops|-e )' \
	  | sed -E 's/^torch==([0-9.]+)\+cpu/torch==\1/' > requirements.lock

clean:
	rm -rf var .pytest_cache
