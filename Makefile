# Every target creates .venv when it is missing (or when pyproject.toml or the C book changed).
# The editable install builds streamer/sansio/_book.c in place when a compiler is there.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml setup.py streamer/sansio/_book.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streamer demo

lint: $(STAMP)
	$(BIN)/ruff check streamer tests benchmarks examples
	$(BIN)/ruff format --check streamer tests benchmarks examples
	$(BIN)/mypy --strict streamer

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_exchange.py
	$(BIN)/python benchmarks/bench_transport.py
	$(BIN)/python benchmarks/bench_live.py
	$(BIN)/python benchmarks/bench_orders.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build streamer/sansio/*.so
