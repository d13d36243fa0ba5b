# Two commands for a user: `make run` and `make test`. The rest are building blocks.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install model run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[train,dev,spark]'
	touch $@

install: $(VENV)/.installed

model: install
	$(BIN)/iccs models ensure

run: model
	$(BIN)/iccs serve --port $(PORT)

test: install
	$(BIN)/python -m pytest -p no:cacheprovider tests

lint: install
	$(BIN)/ruff check service training tests
	$(BIN)/mypy service

clean:
	rm -rf $(VENV) state .pytest_cache
