# Two commands: `make demo` (install + run the embedded benchmark) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: setup demo paper test test-fast lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[test]"
	touch $@

# The run, then `dvc commit` so dvc.lock records what was built (Snakemake has just made
# every output current for this config and code; `dvc status` then tells real changes).
demo: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/dvc commit --force --quiet data victims attack_sets untargeted

# Everything `demo` builds, plus SVAL and the comparison tables (Tables 2 and 5, Figs. 3
# and 7-10) and the reproduction report results/paper/reproduction.md (the `paper`
# target; docs/design.md), then `dvc commit` of what it built, as `demo` does.
paper: setup
	$(BIN)/snakemake --cores $(CORES) paper
	$(BIN)/dvc commit --force --quiet data victims attack_sets untargeted paper

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q

test-fast: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -m "not slow"

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/

clean:
	rm -rf data results logs mlruns mlflow.db .snakemake
