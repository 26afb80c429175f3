# Two commands on a fresh machine: `make quickstart` and `make test` (README.md).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install quickstart test test-slow lint wordnet docs

$(BIN)/tfpipe: setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,onnx,openvino,beam]'
	touch $@

install: $(BIN)/tfpipe

# WordNet for nltk comes from Debian packages; installed when apt-get is there and we may use it.
wordnet:
	@if [ ! -f /usr/share/wordnet/data.noun ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index; \
	fi

quickstart: install wordnet
	$(BIN)/tfpipe quickstart

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check tfpipe tests benchmarks examples
	$(BIN)/lint-imports

# docs/cli.md is generated from the argparse parsers; tests/cli/test_cli_reference.py fails when it is stale.
docs: install
	$(BIN)/python -m tfpipe.cli.reference --write docs/cli.md
