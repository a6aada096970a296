# The README's two commands: `make demo` and `make test`; `make docs` builds the API site.
PY ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip
PYTHON := $(VENV)/bin/python
CONSTRAINTS := constraints-cpu.txt
EPOCHS ?=

.PHONY: conformance pixyz-programs demo test setup data lint typecheck clean comparisons docs docs-check docs-tools

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

# The API reference and tutorials, in docs/_build/html, warnings as errors. myst-nb runs
# every tutorial notebook during the build (a cell that raises fails it). Formulas use
# Debian's libjs-mathjax (or $PIXYZ_PYRO_MATHJAX); nothing is loaded from the web.
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[docs]"
	touch $@

# Debian's libjs-mathjax and chromium, installed (as root) only when missing.
docs-tools:
	-bash scripts/get_docs_tools.sh

docs: $(VENV)/.docs-installed docs-tools
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html

# Headless Chromium (Debian's chromium) on the built site: the math rendered; screenshots
# in out/docs-screens/.
docs-check: docs
	$(PYTHON) scripts/check_docs.py docs/_build/html --out out/docs-screens

# Pixyz 0.3.3's own tests and docstring examples, run against pixyz_pyro (not part of
# `make test`: it needs a clone of masa-su/pixyz, which CI does not have).
CONFORMANCE ?= ../shared/pixyz-conformance/run.py
conformance: setup
	@if [ -z "$(PIXYZ_GIT)" ]; then \
	  echo "make conformance needs a git clone of Pixyz (a bare one is enough):"; \
	  echo "  git clone --bare https://github.com/masa-su/pixyz.git /path/to/pixyz.git"; \
	  echo "  make conformance PIXYZ_GIT=/path/to/pixyz.git"; \
	  echo "(runner: $(CONFORMANCE); see its README.md)"; \
	  exit 2; \
	fi
	PYTHONPATH=$(CURDIR) PIXYZ_GIT=$(PIXYZ_GIT) $(PYTHON) $(CONFORMANCE) --target pixyz_pyro \
	  --python $(CURDIR)/$(PYTHON) $(CONFORMANCE_ARGS)

# Real Pixyz programs (tutorials, notebooks, pixyzoo, community code) with only their
# imports changed; needs clones named owner+name in PIXYZ_PROGRAMS_MIRROR (not in CI).
pixyz-programs: setup
	@if [ -z "$(PIXYZ_PROGRAMS_MIRROR)" ]; then \
	  echo "make pixyz-programs needs a folder of git clones named owner+name:"; \
	  echo "  masa-su+pixyz, masa-su+pixyzoo, HironoOkamoto+practice_pixyz,"; \
	  echo "  hei4+medium-pyro-pixyz, naruya+ssm-pixyz (bare clones are enough)"; \
	  echo "  make pixyz-programs PIXYZ_PROGRAMS_MIRROR=/path/to/clones"; \
	  exit 2; \
	fi
	PIXYZ_PROGRAMS_MIRROR=$(PIXYZ_PROGRAMS_MIRROR) $(PYTHON) scripts/run_pixyz_programs.py \
	  $(PIXYZ_PROGRAMS_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

# `make test` runs this too (tests/test_typing.py), with the typing snippets.
typecheck: setup
	$(VENV)/bin/mypy -p pixyz_pyro

clean:
	rm -rf $(VENV) out docs/_build .mypy_cache
