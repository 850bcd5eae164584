# The two commands of the README. Both create .venv and install what they need on their own.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The suite runs on two pytest-xdist workers (each with its own test database and redis-server; whole modules
# stay on one worker, so a module's server fixtures start once). PYTEST_ARGS="-n 0" runs it in one process.
PYTEST_ARGS ?= -n 2 --dist loadscope

.PHONY: run test lint bench-check clean prod

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## run: serve the portal with demo data on the embedded default (SQLite, no servers) at http://127.0.0.1:8000
run: $(VENV)/.installed
	$(PY) manage.py serve

## prod: the production shape on one machine behind nginx, run by honcho (needs DJANGO_ENV=production and its
## variables, and Debian's nginx; docs/operations.md)
prod: $(VENV)/.installed
	$(PY) manage.py prod

## test: ruff, import layers, mypy, migration check and the pytest suite (PostgreSQL and Redis when reachable; CI=true requires them)
test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
