# Two commands: `make demo` (install + run the embedded benchmark) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[test]"
	touch $@

demo: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/

clean:
	rm -rf data results logs mlruns mlflow.db .snakemake
