# grid-mgmt — the two commands:
#   make run    install what is missing, then run everything locally (API on http://127.0.0.1:8000/docs)
#   make test   install what is missing, then run the test suite against real PostGIS and Redis
# Both use GRID_DATABASE_URL / GRID_REDIS_URL when set, else PostgreSQL/Redis on 127.0.0.1 when they answer,
# else start a project-local cluster and redis-server under ./var (see grid_mgmt/runner/services.py).

VENV := .venv
BIN := $(VENV)/bin
GRID := $(BIN)/grid-mgmt
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test install lint bench lock clean distclean

run: install ## run services, migrations, demo data, API and one worker (Ctrl-C stops all)
	$(GRID) up

test: install ## run the tests (PYTEST_ARGS="-x -k foo" to narrow)
	$(GRID) with-services -- $(BIN)/pytest $(PYTEST_ARGS)

install: ## system packages (as root), .venv, python packages, requirements.lock; quick when nothing changed
	@scripts/install.sh

lint: install ## ruff, ruff format --check, mypy, import-linter (runs all, fails if any failed)
	@status=0; \
	echo "lint: ruff check";         $(BIN)/ruff check . || status=1; \
	echo "lint: ruff format --check"; $(BIN)/ruff format --check . || status=1; \
	echo "lint: mypy";               $(BIN)/mypy || status=1; \
	echo "lint: import-linter";      $(BIN)/lint-imports || status=1; \
	exit $$status

bench: install ## reproducible benchmarks (bench/; BENCH_ARGS="--quick" for a smoke run)
	$(GRID) with-services --durable -- $(BIN)/python -m bench $(BENCH_ARGS)

lock: install ## regenerate requirements.lock from the current .venv
	rm -f requirements.lock
	@scripts/install.sh

clean: ## remove caches and build leftovers (keeps .venv and the local database in var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/results build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## also remove .venv and var/ (stop `make run` first: var/ holds the local database)
	rm -rf $(VENV) var

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
