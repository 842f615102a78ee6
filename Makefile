# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench setup setup-dev migrate lint typecheck format browser clean

# What the app needs to run; the tests and checks add requirements-dev.txt on top.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

setup: $(STAMP)

setup-dev: $(DEV_STAMP)

migrate: setup
	$(BIN)/python manage.py db upgrade

run: migrate
	$(BIN)/streamlit run app.py --server.address localhost --server.port 8501 --server.headless true --browser.gatherUsageStats false

# The browser tests drive Debian's chromium; install it when it is missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install -y chromium"; fi; }

test: setup-dev browser lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A report, not a test: every figure against its target (bench/README.md), on datasets of 10k, 100k and 1m
# integrations. BENCH_ARGS="--quick --sizes 10k,100k" to try it out (no million, fewer checks).
bench: setup-dev browser
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pyright at the strictness set in pyproject.toml ([tool.pyright]).
typecheck: setup-dev
	$(BIN)/pyright

format: setup-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
