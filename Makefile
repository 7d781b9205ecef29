# Quick start: `make demo` and `make test`. Each creates .venv when missing and installs the host
# and every method plugin (plugins/sbiplug-*) editable.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PLUGINS := $(sort $(wildcard plugins/sbiplug-*))
PLUGIN_PROJECTS := $(addsuffix /pyproject.toml,$(PLUGINS))
# Pinned: on 3.11 the CPU wheel on this machine; on 3.12 the registry has only the full CUDA build
# of 2.13.0 (about 3 GB), kept in the venv between runs. An unpinned torch pulls a newer multi-GB one.
# Python 3.12 (ArviZ 1.x): make PYTHON=python3.12 VENV=.venv312 HOST_VENV=.venv312-host test
TORCH ?= torch==2.13.0

.PHONY: demo test test-host test-plugins-alone lint imports docs docs-tutorials venv venv-host clean

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dask,dev,docs]" $(addprefix -e ./,$(PLUGINS))
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sbiplug run tutorials/two_moons.toml --out demo-output --resume

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

# The host alone, with no method plugin installed: it must pass tests/platform.
HOST_VENV ?= .venv-host
$(HOST_VENV)/.installed: pyproject.toml
	test -x $(HOST_VENV)/bin/python || $(PYTHON) -m venv $(HOST_VENV)
	$(HOST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(HOST_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(HOST_VENV)/bin/python -m pip install --quiet -e ".[dask,dev]"
	touch $@

venv-host: $(HOST_VENV)/.installed

test-host: $(HOST_VENV)/.installed
	$(HOST_VENV)/bin/python -m pytest -n 2 --dist loadfile -q tests/platform

# Each method plugin alone on top of the host: install it into the host-only venv, run its own
# tests, uninstall it again, so a plugin that leans on another plugin fails here.
test-plugins-alone: $(HOST_VENV)/.installed
	$(HOST_VENV)/bin/python -m pip uninstall --quiet --yes $(notdir $(PLUGINS)) 2>/dev/null || true
	set -e; for plugin in $(PLUGINS); do \
	    name=$$(basename $$plugin); \
	    echo "== $$name alone on the host"; \
	    $(HOST_VENV)/bin/python -m pip install --quiet --no-deps -e ./$$plugin; \
	    $(HOST_VENV)/bin/python -m pytest -n 2 --dist loadfile -q tests/plugins/$${name#sbiplug-} \
	        || { $(HOST_VENV)/bin/python -m pip uninstall --quiet --yes $$name; exit 1; }; \
	    $(HOST_VENV)/bin/python -m pip uninstall --quiet --yes $$name; \
	done

# The documentation site, warnings as errors (broken links and anchors included): site/.
# The tutorial pages are stored outputs; `make docs-tutorials` runs the tutorials again.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-tutorials: $(STAMP)
	$(BIN)/python docs/render_tutorials.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

imports: $(STAMP)
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(HOST_VENV) demo-output site
