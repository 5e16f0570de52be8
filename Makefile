# evalhouse — `make demo` runs the main job on the embedded default; `make test` passes the tests.
# Each target bootstraps .venv with the machine's python3 on first use (uv when present, else pip).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test dev lint bench clean-warehouse

# Bytecode is compiled at install (pip's default, not uv's): where PYTHONDONTWRITEBYTECODE is set,
# as in these sessions, every process would otherwise compile every module it imports from
# source (LiteLLM alone: ~2,900 files), which dominates `evalhouse run`'s start-up.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then \
		uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'; \
	fi
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/evalhouse demo

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc
	@# the distributed-executor test on its own (a dask scheduler and two worker processes); only
	@# in a plain `make test`, not when PYTEST_ARGS picks other tests
	@[ -n "$(PYTEST_ARGS)" ] || $(BIN)/python -m pytest -m distributed

dev: $(STAMP)
	$(BIN)/evalhouse dev

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench

clean-warehouse: $(STAMP)
	-$(BIN)/evalhouse db down
	rm -rf .evalhouse
