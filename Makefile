# The few commands a newcomer needs. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck audit check bench eval fake-llm clean

$(BIN)/deja: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# PyTorch (CPU) is only for training and exporting the models; serving runs on ONNX Runtime.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train]'
	touch $@

run: $(BIN)/deja  ## Run Déjà on the embedded Postgres (http://127.0.0.1:8000)
	$(BIN)/deja serve

test: $(BIN)/deja  ## Run the whole test suite
	$(BIN)/pytest -q

lint: $(BIN)/deja
	$(BIN)/ruff check app tests migrations
	$(BIN)/ruff format --check app tests migrations

typecheck: $(BIN)/deja
	$(BIN)/mypy

audit: $(BIN)/deja  ## Known vulnerabilities in the installed dependencies
	$(BIN)/python scripts/audit.py

check: lint typecheck test

fake-llm: $(BIN)/deja  ## An OpenAI-compatible stand-in model on :8001
	$(BIN)/deja fake-llm

eval: $(BIN)/deja  ## Precision/recall of the hit decision on the labelled pairs
	$(BIN)/deja eval --pairs ../shared/data/langcache_chat_pairs.csv

bench: $(BIN)/deja  ## Load benchmark; writes docs/benchmarks.md
	$(BIN)/deja bench

clean:
	rm -rf $(VENV) .deja .pytest_cache .mypy_cache .ruff_cache
