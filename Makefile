# `make demo` and `make test` do all set-up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `.ci/run` sets EXTRAS=dev,ray,mcp so that the optional integrations are tested too.
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install test lint typecheck pytest demo bench fmt clean infinity-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

lint: install
	$(BIN)/ruff format --check rerank_cli tests bench action
	$(BIN)/ruff check rerank_cli tests bench action

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q
	@test -x .venv-infinity/bin/infinity_emb || echo "note: tests/test_infinity.py was SKIPPED (no .venv-infinity); build it with: make infinity-venv"

infinity-venv:
	bash scripts/infinity-venv.sh

test: lint typecheck pytest

demo: install
	@RERANK=$(BIN)/rerank bash examples/demo.sh

bench: install
	$(BIN)/python -m bench

fmt: install
	$(BIN)/ruff format rerank_cli tests bench action
	$(BIN)/ruff check --fix rerank_cli tests bench action

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
