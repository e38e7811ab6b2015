# The two commands a newcomer runs:  make book   and   make test
# Both create .venv and install what requirements.txt pins (a second run installs nothing).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JB_FLAGS := --all -W -n --keep-going

.PHONY: book test test-fast test-lib test-notebooks test-site site browser bench-cpu clean help

help:
	@echo "make book   - set up .venv, execute the notebooks, build the website into _build/html"
	@echo "make test   - set up .venv, run library tests, nbval on every notebook, build and check the site"
	@echo "make test-fast - the library tests without the slow ones (Triton interpreter, training runs)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# _build/html is removed first: Sphinx never deletes files an older build wrote (a stale 24 MB
# MathJax would ship and fail the site-size check); the notebooks execute anyway (force)
book: $(STAMP)
	rm -rf _build/html
	$(BIN)/jupyter-book build $(JB_FLAGS) .
	@echo "website: _build/html/index.html"

site: book

# Debian's chromium drives the real-browser check; installed when missing (root on CI).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null)

test-lib: $(STAMP)
	$(BIN)/python -m pytest -q tests

# the edit loop: no @pytest.mark.slow tests (Triton interpreter, training runs, > ~5 s), no notebooks
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not gpu" tests

# nbval runs every notebook in book/ (outputs not compared: assertions live in the notebooks),
# each copied ALONE to a temp dir with results/ reachable only by download, as on Colab
test-notebooks: $(STAMP)
	$(BIN)/python tests/book/test_colab.py --nbval-cell-timeout=600

# serves _build/html on 127.0.0.1, opens every page in chromium with the network blocked;
# screenshots go to _build/screenshots/
test-site: book browser
	$(BIN)/python tests/site/check_site.py _build/html --chromium $(CHROMIUM) --screenshots _build/screenshots

test: test-lib test-notebooks test-site

bench-cpu: $(STAMP)
	$(BIN)/python -m blaviz.bench cpu

clean:
	rm -rf _build
