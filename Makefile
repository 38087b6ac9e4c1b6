# One entry point for people and CI: make install | check | test | bench | run
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE ?= examples/imagemanager
PORT ?= 8080

.PHONY: install check test bench bench-reload run docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

check: $(STAMP)
	$(BIN)/ruff check ingressproxy tests benchmarks
	$(BIN)/ruff format --check ingressproxy tests benchmarks
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/docs-check

# The documentation site (mkdocs.yml) into site/; --strict: a broken link fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# The whole suite: lint and types first, then every test.
test: check
	$(BIN)/pytest -q

# Needs wrk, nginx and haproxy (apt-get install wrk nginx haproxy); docs/performance.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --json benchmarks/results/proxy.json

bench-reload: $(STAMP)
	$(BIN)/python benchmarks/reload.py --json benchmarks/results/reload.json

run: $(STAMP)
	$(BIN)/ingressproxy serve $(EXAMPLE) --port $(PORT) --fake-backends

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
