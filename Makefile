# The README's two commands: `make demo` and `make test`.
PY ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
PYTHON := $(VENV)/bin/python
CONSTRAINTS := constraints-cpu.txt
EPOCHS ?=

.PHONY: demo test setup data lint clean comparisons

$(VENV)/.installed: setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[dev,examples]"
	touch $@

setup: $(VENV)/.installed

data:
	-bash scripts/get_data.sh

demo: setup data
	$(PYTHON) -m examples.vae $(if $(EPOCHS),--epochs $(EPOCHS),)

test: setup data
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest -q -x -p no:cacheprovider

comparisons: setup
	$(PYTHON) -m comparisons

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) out
